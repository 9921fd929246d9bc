"""The NoiseBrush docker: server, settings, Generate/Cancel, progress and a live preview layer."""

from __future__ import annotations

import json
from typing import Any

from krita import DockWidget

from . import krita_host as host
from .generate import Target, apply, prepare
from .nb_client import DEFAULT_URL, Client, ServerError, read_token, start_local_server
from .nb_edit import LABELS, Settings
from .qtcompat import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QThread,
    QVBoxLayout,
    QWidget,
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
        self._doc: Any = None
        self._settings = Settings()
        self._server_proc: Any = None

        root = QWidget(self)
        form = QFormLayout()
        self.url = QLineEdit(host.read_setting("url", DEFAULT_URL))
        self.token = QLineEdit()  # not saved: kritarc is readable by other users, the token file is not
        self.token.setPlaceholderText("empty: read the local token file")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.kind = QComboBox()
        for kind, label in LABELS.items():
            self.kind.addItem(label, kind)
        self.model = QLineEdit("default")
        self.strength = _dspin(0.0, 1.0, 0.05, 0.5)
        self.steps = _spin(0, 1000, 0)
        self.steps.setSpecialValueText("model default")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.variations = _spin(1, 16, 1)
        self.prompt = QLineEdit()
        self.negative = QLineEdit()
        self.concepts = QLineEdit()
        self.concepts.setPlaceholderText("cat, -hat  (LEDITS: add cat, remove hat)")
        self.previews = QCheckBox("Live preview layer")
        self.previews.setChecked(True)
        for label, widget in (
            ("Server", self.url),
            ("Token", self.token),
            ("Operation", self.kind),
            ("Model", self.model),
            ("Strength", self.strength),
            ("Steps", self.steps),
            ("Seed", self.seed),
            ("Variations", self.variations),
            ("Prompt", self.prompt),
            ("Negative", self.negative),
            ("Concepts", self.concepts),
        ):
            form.addRow(label, widget)
        self.start_server = QPushButton("Start local server")
        self.generate_btn = QPushButton("Generate")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.generate_btn, self.cancel_btn):
            buttons.addWidget(b)
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(root)
        layout.addLayout(form)
        layout.addWidget(self.previews)
        layout.addWidget(self.start_server)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setWidget(root)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.generate_btn.clicked.connect(self.generate)
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

    def generate(self) -> None:
        if self._worker is not None:
            return
        if self._thread is not None:  # the last run's thread is still winding down
            self._thread.wait(2000)
        try:
            client = self._client()
            self._settings = self._read_settings()
            self._doc = host.active_document()
            self._targets = prepare(self._doc, host.selected_nodes(self._doc), self._settings)
        except (host.HostError, ServerError) as exc:
            self._tell(str(exc))
            self.open()
            return
        self._made = host.add_placeholders(
            self._doc, [t.node for t in self._targets], LABELS[self._settings.kind]
        )
        self._save_settings()
        self._worker = Worker(client, self._settings, self._targets)
        self._thread = QThread()
        self._thread.finished.connect(self._thread_finished)
        self._worker.progress.connect(self._on_progress)
        self._worker.preview.connect(self._on_preview)
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._busy(True, f"NoiseBrush {LABELS[self._settings.kind]}: {len(self._targets)} layer(s)...")
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
        layer = f", layer {i + 1} of {n}" if n > 1 else ""
        host.status_message(f"NoiseBrush {LABELS[self._settings.kind]}: step {step} of {total}{layer}...")

    def _on_preview(self, i: int, box: Any, rgba: bytes) -> None:
        if self._stopping():
            return
        if self._made is not None and i < len(self._made.nodes):
            host.show_preview(self._doc, self._made.nodes[i], box, rgba)

    def _on_done(self, results: list[list[bytes]]) -> None:
        assert self._made is not None
        made = apply(self._doc, self._targets, results, self._settings, self._made)
        self._made = None
        self._busy(False, f"Added {len(made)} layer(s).")

    def _on_failed(self, message: str) -> None:
        self._discard()
        self.bar.reset()
        self._busy(False, message)
        self.open()  # the painter may have started from the Filter menu: show why nothing came

    def _on_cancelled(self) -> None:
        self._discard()
        self.bar.reset()
        self._busy(False, "Cancelled; nothing was written.")

    # -- helpers ----------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        return self._worker is None or self._worker.stop.is_set()

    def _discard(self) -> None:
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
        self.concepts.setEnabled(not sdedit)

    def _read_settings(self) -> Settings:
        return Settings(
            kind=self.kind.currentData(),
            model=self.model.text().strip() or "default",
            strength=self.strength.value(),
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
        self.kind.setCurrentIndex(max(0, self.kind.findData(s.kind)))
        self.model.setText(s.model)
        self.strength.setValue(s.strength)
        self.steps.setValue(s.steps)
        self.seed.setValue(s.seed)
        self.variations.setValue(s.variations)
        self.prompt.setText(s.prompt)
        self.negative.setText(s.negative_prompt)
        self.concepts.setText(s.concepts)
        self.previews.setChecked(s.previews)


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
