"""The NoiseBrush docker: server, settings, Generate/Cancel, progress, a live preview layer, Live mode and
a history of results.

Every number field takes its range, default and tooltip from nb_fields.py (generated from the engine's
requests), so no bound or default of the engine is written here.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from krita import DockWidget

from . import krita_host as host
from .generate import Frames, Target, apply, prepare, prepare_frames, write_frames
from .nb_client import DEFAULT_URL, Client, ServerError, read_token, start_local_server
from .live import HISTORY_SIZE, POLL_MS, Entry, History, Settle
from .nb_edit import LABELS, Settings, result_name
from .nb_fields import FIELDS
from .qtcompat import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QIcon,
    QImage,
    QLabel,
    QLineEdit,
    QListWidget,
    QPixmap,
    QProgressBar,
    QPushButton,
    QSpinBox,
    Qt,
    QThread,
    QTimer,
    QVBoxLayout,
    QWidget,
    QListWidgetItem,
)
from .worker import Worker, start

DOCKER_ID = "noisebrush_docker"


class NoiseBrushDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("NoiseBrush")
        self.setObjectName(DOCKER_ID)
        self._thread: Any = None
        self._worker: Worker | None = None
        self._targets: list[Target] = []
        self._made: host.Placeholders | None = None
        self._frames: Frames | None = None  # set while a run over an animated layer's keyframes goes
        self._doc: Any = None
        self._settings = Settings()
        self._server_proc: Any = None

        root = QWidget(self)
        self.url = QLineEdit(host.read_setting("url", DEFAULT_URL))
        self.token = QLineEdit()  # not saved: kritarc is readable by other users, the token file is not
        self.token.setPlaceholderText("empty: read the local token file")
        self.token.setToolTip("paste what `noisebrush token --print` shows where the server runs")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.kind = QComboBox()
        for kind, label in LABELS.items():
            self.kind.addItem(label, kind)
        self.model = _text("sdedit", "model")
        self.strength = _number("sdedit", "strength")
        self.skip = _number("ledits", "skip")
        self.steps = _number("sdedit", "steps")
        self.seed = _number("sdedit", "seed")
        self.variations = _number("sdedit", "variations")
        self.context = _number("sdedit", "context")
        self.prompt = _text("sdedit", "prompt")
        self.negative = _text("sdedit", "negative_prompt")
        self.concepts = QLineEdit()
        self.concepts.setPlaceholderText("snow:7, -fog  (LEDITS: add snow, remove fog)")
        self.concepts.setToolTip("SEGA concepts in the engine's one form: 'snow:7, -fog'")
        # widget -> (kind, job field) whose default, bounds and help it shows (tests/plugins checks them)
        self.fields: dict[str, tuple[Any, str, str]] = {
            "model": (self.model, "sdedit", "model"),
            "strength": (self.strength, "sdedit", "strength"),
            "skip": (self.skip, "ledits", "skip"),
            "steps": (self.steps, "sdedit", "steps"),
            "seed": (self.seed, "sdedit", "seed"),
            "variations": (self.variations, "sdedit", "variations"),
            "context": (self.context, "sdedit", "context"),
            "prompt": (self.prompt, "sdedit", "prompt"),
            "negative": (self.negative, "sdedit", "negative_prompt"),
        }
        self.previews = QCheckBox("Live preview layer")
        self.previews.setChecked(True)
        groups = (  # related fields together: the texts side by side
            ("Server", (("URL", self.url), ("Token", self.token))),
            ("Text", (("Prompt", self.prompt), ("Negative", self.negative), ("Concepts", self.concepts))),
            (
                "Settings",
                (
                    ("Operation", self.kind),
                    ("Model", self.model),
                    ("Strength", self.strength),
                    ("Skip", self.skip),
                    ("Steps", self.steps),
                    ("Seed", self.seed),
                    ("Variations", self.variations),
                    ("Context", self.context),
                ),
            ),
        )
        self.start_server = QPushButton("Start local server")
        self.generate_btn = QPushButton("Generate")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.generate_btn, self.cancel_btn):
            buttons.addWidget(b)
        self.live = QCheckBox("Live")
        self.live.setToolTip(
            "follow the painting: when a stroke on the layer ends, run again with the same seed and show "
            "the result in the preview layer; Apply keeps it"
        )
        self.apply_btn = QPushButton("Apply")
        self.apply_btn.setToolTip("keep the result shown in the preview layer as a layer (one undo step)")
        self.apply_btn.setEnabled(False)
        self.rerun_btn = QPushButton("Re-run")
        self.rerun_btn.setToolTip(
            "run the result picked in the history again with a new seed, on its layer as it is now"
        )
        self.rerun_btn.setEnabled(False)
        live_row = QHBoxLayout()
        live_row.addWidget(self.live)
        live_row.addWidget(self.apply_btn)
        live_row.addWidget(self.rerun_btn)
        self.history = QListWidget()
        self.history.setViewMode(QListWidget.ViewMode.IconMode)
        self.history.setIconSize(_size(64))
        self.history.setMaximumHeight(110)
        self.history.setToolTip(
            "results of this session: click shows one in the preview layer; Apply keeps it, Re-run runs it again"
        )
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(root)
        for title, rows in groups:
            box = QGroupBox(title)
            form = QFormLayout(box)
            for label, widget in rows:
                form.addRow(label, widget)
            layout.addWidget(box)
        layout.addWidget(self.previews)
        layout.addWidget(self.start_server)
        layout.addLayout(buttons)
        layout.addLayout(live_row)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.history)
        layout.addStretch(1)
        self.setWidget(root)

        # Live mode and the history (live.py)
        self._history = History(int(host.read_setting("history", str(HISTORY_SIZE)) or HISTORY_SIZE))
        self._shown: host.Placeholders | None = None  # the preview layer showing a result, not yet applied
        self._shown_entry: Entry | None = None
        self._shown_doc: Any = None
        self._live_doc: Any = None
        self._live_node: Any = None
        self._live_client: Client | None = None
        self._live_worker: Worker | None = None
        self._live_targets: list[Target] = []
        self._live_settings: Settings | None = None
        self._live_runs: list[tuple[Any, Any]] = []  # (thread, worker) until each thread has finished
        self._settle = Settle()
        self.live_results = 0  # results shown by Live (tests and measurements read it)
        self.live_submitted_at = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._live_poll)
        self.live.toggled.connect(self._live_toggled)
        self.apply_btn.clicked.connect(self.apply_shown)
        self.history.itemClicked.connect(self._history_clicked)
        self.rerun_btn.clicked.connect(self.rerun)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.generate_btn.clicked.connect(lambda: self.generate())  # not clicked's `checked` as sources
        self.cancel_btn.clicked.connect(self.cancel)
        self.start_server.clicked.connect(self._start_server)
        self._load_settings()
        self._kind_changed()

    def canvasChanged(self, canvas: Any) -> None:  # noqa: N802 - Krita's name
        pass

    # -- public: the Filter > NoiseBrush actions call these -----------------------------------------
    def set_kind(self, kind: str) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))

    def open(self) -> None:
        self.show()
        self.raise_()

    def run(self, kind: str) -> None:
        """Filter > NoiseBrush > SDEdit / LEDITS: generate at once with the current settings."""
        self.set_kind(kind)
        self.generate()

    def generate(self, sources: list[Any] | None = None) -> None:
        """Run on `sources`, else on the layers selected in the Layers docker (or the active one)."""
        if not self._ready():
            return
        try:
            client = self._client()
            self._settings = self._read_settings()
            self._doc = host.active_document()
            nodes = host.selected_nodes(self._doc) if sources is None else sources
            self._targets = prepare(self._doc, nodes, self._settings)
        except (host.HostError, ServerError) as exc:
            self._tell(str(exc))
            self.open()
            return
        self._made = host.add_placeholders(
            self._doc, [t.node for t in self._targets], LABELS[self._settings.kind]
        )
        self._save_settings()
        self._start(client, self._settings, f"{len(self._targets)} layer(s)...")

    def run_frames(self) -> None:
        """Filter > NoiseBrush > SDEdit Every Keyframe: every keyframe of the active layer as one batch job
        on the worker thread; the results go into a copy of the layer when all have come (write_frames).
        Nothing is added before then, so Cancel or a failure leaves the document as it was."""
        if not self._ready():
            return
        self.set_kind("sdedit")
        try:
            client = self._client()
            self._settings = self._read_settings()
            self._doc = host.active_document()
            node = self._doc.activeNode()
            if node is None:
                raise host.HostError("select an animated paint layer first")
            self._frames = prepare_frames(self._doc, node, self._settings)
        except (host.HostError, ServerError) as exc:
            self._tell(str(exc))
            self.open()
            return
        self._targets = self._frames.targets
        self._save_settings()
        self._start(client, self._frames.settings, f"{len(self._targets)} keyframe(s) of {node.name()!r}...")

    def _ready(self) -> bool:
        """No run going (one at a time); the last run's thread, still winding down, is waited for."""
        if self._worker is not None:
            return False
        if self._thread is not None:
            self._thread.wait(2000)
        return True

    def _start(self, client: Client, settings: Settings, what: str) -> None:
        self._worker = Worker(client, settings, self._targets)
        self._thread = QThread()
        self._thread.finished.connect(self._thread_finished)
        self._worker.progress.connect(self._on_progress)
        self._worker.preview.connect(self._on_preview)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._busy(True, f"NoiseBrush {LABELS[self._settings.kind]}: {what}")
        start(self._worker, self._thread)

    def cancel(self) -> None:
        """Tell the server now, not with the job's next event (a step can take many seconds)."""
        if self._worker is None or self._worker.stop.is_set():
            return
        self._worker.stop.set()
        self.cancel_btn.setEnabled(False)
        self.bar.reset()
        self._tell("Cancelling...")

    # -- worker signals (GUI thread) ----------------------------------------------------------------
    def _on_progress(self, i: int, step: int, total: int) -> None:
        if self._stopping():  # a step queued before the click must not bring the bar back
            return
        n = len(self._targets)
        self.bar.setMaximum(max(1, total) * n)
        self.bar.setValue(i * max(1, total) + step)
        unit = "frame" if self._frames is not None else "layer"
        parts = [f"{unit} {i + 1} of {n}"] if n > 1 or self._frames is not None else []
        parts += [f"step {step}/{total}"] if total else []  # a batch's frame starts with no step yet
        self._tell(f"NoiseBrush {LABELS[self._settings.kind]}: {', '.join(parts)}...")

    def _on_preview(self, i: int, box: Any, rgba: bytes) -> None:
        if self._stopping():
            return
        if self._made is not None and i < len(self._made.nodes):
            host.show_preview(self._doc, self._made.nodes[i], box, rgba)

    def _on_done(self, results: list[list[bytes]]) -> None:
        if self._frames is not None:
            return self._frames_done(results)
        assert self._made is not None
        made = apply(self._doc, self._targets, results, self._settings, self._made)
        self._made = None
        for t, images in zip(self._targets, results):
            for rgba in images:
                self._remember(Entry(self._settings.to_dict(), t.node, t.name, t.box, rgba, live=False))
        self._busy(False, f"Added {len(made)} layer(s).")

    def _frames_done(self, results: list[list[bytes]]) -> None:
        frames, self._frames = self._frames, None
        assert frames is not None
        try:
            out = write_frames(self._doc, frames, results)
        except Exception as exc:  # the layer or document went away while the batch ran
            self._busy(False, f"The results could not be written: {exc}")
            self.open()
            return
        self._busy(False, f"Wrote {len(frames.times)} keyframe(s) into {out.name()!r}.")

    def _on_failed(self, message: str) -> None:
        self._discard()
        self.bar.reset()
        self._busy(False, message)
        self.open()  # the painter may have started from the Filter menu: show why nothing came

    def _on_cancelled(self) -> None:
        self._discard()
        self.bar.reset()
        self._busy(False, "Cancelled; nothing was written.")

    # -- Live mode and the history ----------------------------------------------------------------
    def _live_toggled(self, on: bool) -> None:
        if not on:
            self._timer.stop()
            if self._live_worker is not None:
                self._live_worker.stop.set()
            self._live_worker = None
            self._drop_shown()
            self._tell("Live is off.")
            return
        try:
            self._live_client = self._client()
            self._live_doc = host.active_document()
            self._live_node = host.selected_nodes(self._live_doc)[0]
            host.check_node(self._live_node)
        except (host.HostError, ServerError) as exc:
            self._tell(str(exc))
            self.live.setChecked(False)
            return
        self._settle = Settle()  # the first poll counts as a change: Live starts with a run
        self._timer.start()
        self._tell(f"Live on {self._live_node.name()!r}: paint, and the preview follows.")

    def _live_poll(self) -> None:
        try:
            settings = self._read_settings()
            targets = prepare(self._live_doc, [self._live_node], settings)
            box = targets[0].box
            signature = (host.region_signature(self._live_node, box), json.dumps(settings.to_dict()))
        except Exception as exc:  # the document or layer went away: Live stops, saying why
            self.live.setChecked(False)
            self._tell(f"Live stopped: {exc}")
            return
        if self._settle.feed(signature):
            self._live_submit(settings, targets)

    def _live_submit(self, settings: Settings, targets: list[Target]) -> None:
        """A newer change: the running job is cancelled at once (Stop) and only this one's result shows."""
        if self._live_worker is not None:
            self._live_worker.stop.set()
        settings.previews = False
        # A live draft: the server composes at the model's own scale on its live schedule, no full-size refine
        # (the engine's plan.live_run), as the Studio's Live does.
        settings.extra = {**settings.extra, "live": True}
        assert self._live_client is not None
        worker = Worker(self._live_client, settings, targets)
        thread = QThread()
        worker.done.connect(self._on_live_done)
        worker.failed.connect(self._on_live_failed)
        self._live_worker, self._live_targets, self._live_settings = worker, targets, settings
        # A QThread must outlive its run: finished ones are let go here, never from their own signal.
        self._live_runs = [(t, w) for t, w in self._live_runs if not t.isFinished()]
        self._live_runs.append((thread, worker))
        self.live_submitted_at = time.monotonic()
        start(worker, thread)

    def _on_live_done(self, results: list[list[bytes]]) -> None:
        if self.sender() is not self._live_worker or not self.live.isChecked():
            return  # a newer change has replaced this run
        self._live_worker = None
        (target,) = self._live_targets
        assert self._live_settings is not None
        entry = Entry(
            self._live_settings.to_dict(), target.node, target.name, target.box, results[0][0], True
        )
        self._show(entry)
        self._remember(entry)
        self.live_results += 1
        took = time.monotonic() - self.live_submitted_at
        host.status_message(f"NoiseBrush Live: updated in {took:.1f} s")

    def _on_live_failed(self, message: str) -> None:
        if self.sender() is self._live_worker:
            self._live_worker = None
            self._tell(f"Live: {message}")

    def _show(self, entry: Entry) -> None:
        """`entry` in the preview layer above its source (made once; writing pixels is no undo step)."""
        doc = self._live_doc if entry.live else (self._doc or self._live_doc)
        if (
            self._shown is not None
            and self._shown_entry is not None
            and self._shown_entry.source != entry.source
        ):
            self._drop_shown()
        if self._shown is None:
            self._shown = host.add_placeholders(doc, [entry.source], LABELS[entry.settings["kind"]])
            self._shown_doc = doc
        host.show_preview(doc, self._shown.nodes[0], entry.box, entry.rgba)
        self._shown_entry = entry
        self.apply_btn.setEnabled(True)

    def apply_shown(self) -> None:
        """The preview layer becomes a layer of the document: its adding is the one undo step."""
        if self._shown is None or self._shown_entry is None:
            return
        e = self._shown_entry
        self._shown.nodes[0].setName(result_name(e.source_name, e.settings["kind"], 0, 1))
        host.refresh(self._shown_doc)
        self._shown, self._shown_entry = None, None
        self.apply_btn.setEnabled(False)
        self._tell(f"Applied: {result_name(e.source_name, e.settings['kind'], 0, 1)}.")

    def _drop_shown(self) -> None:
        if self._shown is not None:
            host.discard(self._shown_doc, self._shown)
        self._shown, self._shown_entry = None, None
        self.apply_btn.setEnabled(False)

    def _remember(self, entry: Entry) -> None:
        self._history.add(entry)
        self.history.clear()
        for e in self._history.entries:
            item = QListWidgetItem(_thumbnail(e), e.caption())
            item.setToolTip(e.tooltip())
            self.history.addItem(item)

    def _history_clicked(self, item: Any) -> None:
        row = self.history.row(item)
        if 0 <= row < len(self._history.entries):
            self._show(self._history.entries[row])
            self.rerun_btn.setEnabled(True)

    def rerun(self) -> None:
        """The picked result's settings again, with a new seed, on its layer's pixels and the selection as
        they are now; the settings go into the docker too, so what runs is what the painter sees."""
        row = self.history.currentRow()
        if not 0 <= row < len(self._history.entries) or self._worker is not None:
            return
        entry = self._history.entries[row]
        settings = Settings.from_dict(entry.settings)
        settings.seed = (entry.settings["seed"] + random.randrange(1, INT_MAX)) % INT_MAX  # never the same
        self._put_settings(settings)
        self._drop_shown()
        self.generate([entry.source])

    # -- helpers ----------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        return self._worker is None or self._worker.stop.is_set()

    def _discard(self) -> None:
        self._frames = None  # nothing of a frames run is in the document before its results are
        if self._made is not None:
            host.discard(self._doc, self._made)
            self._made = None

    def _tell(self, message: str) -> None:
        """In the docker and in Krita's status bar (the docker may be hidden: Filter menu runs)."""
        self.status.setText(message)
        host.status_message(message)

    def _busy(self, busy: bool, message: str) -> None:
        self.generate_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self._tell(message)
        if busy:
            self.bar.setValue(0)
        else:
            self._worker = None  # the thread object lives on until it has finished (_thread_finished)

    def _thread_finished(self) -> None:
        if self._worker is None:
            self._thread = None

    def _client(self) -> Client:
        token = self.token.text().strip() or read_token()
        return Client(self.url.text().strip() or DEFAULT_URL, token)

    def _start_server(self) -> None:
        try:
            self.status.setText("Starting the local server...")
            self._server_proc = start_local_server(
                self.url.text().strip() or DEFAULT_URL, host.read_setting("command", "")
            )
            if self._server_proc is not None:  # ours: stop it with Krita
                host.on_close(self._server_proc.terminate)
            self.status.setText("Local server is up.")
        except ServerError as exc:
            self.status.setText(str(exc))

    def _kind_changed(self) -> None:
        sdedit = self.kind.currentData() == "sdedit"
        for w in (self.strength, self.variations, self.negative):
            w.setEnabled(sdedit)
        for w in (self.concepts, self.skip):
            w.setEnabled(not sdedit)

    def _read_settings(self) -> Settings:
        return Settings(
            kind=self.kind.currentData(),
            model=self.model.text().strip() or FIELDS["sdedit"]["model"]["default"],
            strength=self.strength.value(),
            skip=self.skip.value(),
            context=self.context.value(),
            steps=self.steps.value(),
            seed=self.seed.value(),
            variations=self.variations.value(),
            prompt=self.prompt.text(),
            negative_prompt=self.negative.text(),
            concepts=self.concepts.text(),
            previews=self.previews.isChecked(),
        )

    def _save_settings(self) -> None:
        host.write_setting("url", self.url.text().strip())
        host.write_setting("settings", json.dumps(self._settings.to_dict()))

    def _load_settings(self) -> None:
        try:
            s = Settings.from_dict(json.loads(host.read_setting("settings", "{}")))
        except (ValueError, TypeError):
            return
        self._put_settings(s)

    def _put_settings(self, s: Settings) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(s.kind)))
        self.model.setText(s.model)
        self.strength.setValue(s.strength)
        self.skip.setValue(s.skip)
        self.context.setValue(s.context)
        self.steps.setValue(s.steps)
        self.seed.setValue(s.seed)
        self.variations.setValue(s.variations)
        self.prompt.setText(s.prompt)
        self.negative.setText(s.negative_prompt)
        self.concepts.setText(s.concepts)
        self.previews.setChecked(s.previews)


INT_MAX = 2**31 - 1  # Qt's spin boxes hold 32-bit ints: a host limit, below the engine's seed bound


def _number(kind: str, name: str) -> Any:
    """A spin box with the job field's range, default and help; steps' None (the model's) is 0."""
    f = FIELDS[kind][name]
    if name == "steps":
        w = _spin(0, min(f["high"], INT_MAX), 0)
        w.setSpecialValueText("model default")
    elif isinstance(f["default"], float):
        w = _dspin(f["low"], f["high"], 0.05, f["default"])
        w.setDecimals(2)
    else:
        w = _spin(f["low"], min(f["high"], INT_MAX), f["default"])
    w.setToolTip(f["help"])
    return w


def _text(kind: str, name: str) -> QLineEdit:
    f = FIELDS[kind][name]
    w = QLineEdit(f["default"])
    w.setToolTip(f["help"])
    return w


def _size(n: int) -> Any:
    from .qtcompat import QT6

    if QT6:
        from PyQt6.QtCore import QSize
    else:
        from PyQt5.QtCore import QSize
    return QSize(n, n)


def _thumbnail(entry: Entry) -> Any:
    _, _, w, h = entry.box
    image = QImage(entry.rgba, w, h, w * 4, QImage.Format.Format_RGBA8888)
    small = image.scaled(
        64, 64, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    return QIcon(QPixmap.fromImage(small))


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    return w


def _dspin(lo: float, hi: float, step: float, value: float) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    return w
