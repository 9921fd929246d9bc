"""LEDITS from the app: concepts to add or remove, each with a scale; changing one re-runs the edit on
the same source (the engine caches the inversion), replacing the result layer's pixels as one undo step.
Every selected layer runs as one batch through the runner the other surfaces share (layer_batch.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from noisebrush.core.engine.fields import specs
from noisebrush.core.engine.requests import CONCEPT_SCALE, Concept, LeditsRequest
from noisebrush.core.errors import BadInput

from .commands import AddLayerCommand
from .document import Document
from .engines import EngineHolder
from .generation import preview_image
from .layer_batch import LayerResult, batch_job, failures, layer_batch
from .model.layer import Layer
from .targets import Target, build_targets, result_layer
from .worker import EngineWorker, JobRunner

RERUN_DELAY_MS = 350
SPECS = specs(LeditsRequest)  # the panel's defaults and bounds, declared once on the request
CONCEPT_SPECS = specs(Concept)


@dataclass
class ConceptSetting:
    text: str
    remove: bool = False
    scale: float = CONCEPT_SCALE


@dataclass
class LeditsOptions:
    """The LEDITS panel's settings; the request's fields take their defaults from the request itself."""

    model: str = SPECS["model"].default
    concepts: list[ConceptSetting] = field(default_factory=list)
    where: str = "selection"  # see targets.WHERE
    # "layers": every layer from the seed's noise, as before the batch runner (else layer n: seed + n)
    shared_noise: bool = True
    steps: int | None = SPECS["steps"].default
    skip: float = SPECS["skip"].default
    seed: int = SPECS["seed"].default
    device: str = SPECS["device"].default


@dataclass
class Session:
    """One source being edited: re-runs reuse its guide so the engine's cached inversion applies."""

    targets: list[Target]
    layers: list[Layer | None]


class LeditsController(QObject):
    running_changed = pyqtSignal(bool)
    progress = pyqtSignal(int, int, float)
    preview_changed = pyqtSignal(object, int, int)
    message = pyqtSignal(str)
    error = pyqtSignal(str)
    finished = pyqtSignal(str)
    concepts_changed = pyqtSignal()
    vocabulary_changed = pyqtSignal(object)  # list[str] | None

    def __init__(
        self, doc: Document, engines: EngineHolder, runner: JobRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.doc, self.engines, self.runner = doc, engines, runner
        self.options = LeditsOptions()
        self.session: Session | None = None
        self._mine = False
        self._rerun_wanted = False
        self._apply_wanted: bool | None = None  # an apply waits for a cancelled live run (new session?)
        # Asked when the runner is busy with another's run: True if that run may be cancelled (a live run).
        self.preemptible: Callable[[], bool] = lambda: False
        self._started = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RERUN_DELAY_MS)
        self._timer.timeout.connect(self._rerun)
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        runner.succeeded.connect(self._on_done)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        runner.busy_changed.connect(self._on_busy)
        doc.reset.connect(self.end_session)

    @property
    def running(self) -> bool:
        return self._mine and self.runner.busy

    @property
    def batch_size(self) -> int:
        """How many layers (or selections) the run works through, one after another."""
        return len(self.session.targets) if self.session is not None else 0

    # --- concepts -----------------------------------------------------------------------------

    def add_concept(self, text: str, remove: bool = False, scale: float | None = None) -> None:
        """A new concept starts at the model's own scale (its noisebrush.json), LEDITS++'s 7 if it sets none."""
        if scale is None:
            scale = self.engines.concept_scale(self.options.model)
        self.options.concepts.append(ConceptSetting(text.strip(), remove, scale))
        self.concepts_changed.emit()

    def remove_concept(self, index: int) -> None:
        del self.options.concepts[index]
        self.concepts_changed.emit()
        self.schedule_rerun()

    def set_scale(self, index: int, scale: float) -> None:
        """Moving a slider re-runs the edit shortly after it stops moving."""
        self.options.concepts[index].scale = scale
        self.schedule_rerun()

    def set_remove(self, index: int, remove: bool) -> None:
        self.options.concepts[index].remove = remove
        self.schedule_rerun()

    def schedule_rerun(self) -> None:
        if self.session is not None and self._session_alive():
            self._timer.start()

    def _session_alive(self) -> bool:
        s = self.session
        return s is not None and any(la is not None and la in self.doc.layers for la in s.layers)

    def end_session(self) -> None:
        self.session = None

    def load_vocabulary(self) -> None:
        """Ask the engine (off the GUI thread) for the model's concept words."""
        import threading

        model, engines = self.options.model, self.engines

        def work() -> None:
            try:
                vocab = engines.vocabulary(model)
            except Exception:
                vocab = None
            self.vocabulary_changed.emit(vocab)  # queued to the GUI thread

        threading.Thread(target=work, daemon=True, name="nb-vocabulary").start()

    # --- runs ---------------------------------------------------------------------------------

    def _request(self, t: Target) -> LeditsRequest:
        o = self.options
        return LeditsRequest(
            image=t.guide,
            mask=t.mask,
            concepts=[Concept(c.text, c.remove, c.scale) for c in o.concepts if c.text],
            model=o.model,
            steps=o.steps,
            skip=o.skip,
            seed=o.seed,
            device=o.device,
        )

    def apply(self, new_session: bool = True) -> bool:
        """Run the edit; a new session cuts fresh sources, otherwise the session's are reused."""
        if self.runner.busy:
            if self._mine:
                self._rerun_wanted = True
                self.runner.cancel()
            elif self.preemptible():  # a live run gives way; the edit starts when it has stopped
                self._apply_wanted = new_session
                self.runner.cancel()
            else:
                self.message.emit("Another generation is running")
            return False
        if not any(c.text for c in self.options.concepts):
            self.error.emit("Add a concept to add or remove first.")
            return False
        if new_session or not self._session_alive():
            targets = build_targets(self.doc, self.options.where)
            if not targets:
                self.error.emit("Nothing to edit: the selection does not touch the chosen layers.")
                return False
            self.session = Session(targets, [None] * len(targets))
        assert self.session is not None
        reqs = [self._request(t) for t in self.session.targets]
        batch = None
        try:
            if self.options.where == "layers":
                # The shared fields only: a layer the engine cannot take fails alone, the others still run.
                batch = layer_batch(self.session.targets, reqs[0], self.options.shared_noise)
                batch.validate()
            else:
                for r in reqs:
                    r.validate()
        except BadInput as e:
            self.error.emit(str(e))
            return False
        engines = self.engines

        def job(worker: EngineWorker) -> list[np.ndarray]:
            engine = engines.get()
            if not hasattr(engine, "ledits"):
                raise BadInput("this engine has no LEDITS support yet")
            outs = []
            for i, req in enumerate(reqs):
                worker.tag = i
                worker.check_cancel()
                outs.append(engine.ledits(req, callback=worker.callback, should_stop=worker.should_stop))
            return outs

        self._mine = True
        self._started = time.monotonic()
        self.runner.start(job if batch is None else batch_job(engines, batch, 1))
        self.running_changed.emit(True)
        self.message.emit("Editing\u2026 (the first run inverts the image)")
        return True

    def cancel(self) -> None:
        self._rerun_wanted = False
        self._apply_wanted = None
        self._timer.stop()
        if self.running:
            self.runner.cancel()

    def _rerun(self) -> None:
        self.apply(new_session=False)

    def _on_busy(self, busy: bool) -> None:
        if not busy and self._rerun_wanted:
            self._rerun_wanted = False
            self.apply(new_session=False)
        elif not busy and self._apply_wanted is not None:
            new_session, self._apply_wanted = self._apply_wanted, None
            self.apply(new_session=new_session)

    def _on_progress(self, step: int, total: int, left: float) -> None:
        if self._mine:
            self.progress.emit(step, total, left)

    def _on_preview(self, rgb: np.ndarray, box: tuple[int, int, int, int], tag: object) -> None:
        s = self.session
        if self._mine and s is not None and isinstance(tag, int) and tag < len(s.targets):
            img, x, y = preview_image(rgb, box, s.targets[tag])
            self.preview_changed.emit(img, x, y)

    def _end(self, how: str) -> None:
        self._mine = False
        self.preview_changed.emit(None, 0, 0)
        self.running_changed.emit(False)
        self.finished.emit(how)

    def _label(self) -> str:
        words = [("\u2212" if c.remove else "+") + c.text for c in self.options.concepts if c.text]
        return "LEDITS " + " ".join(words)

    def _on_done(self, outs: object) -> None:
        if not self._mine:
            return
        s = self.session
        assert isinstance(outs, list) and s is not None
        results = [r if isinstance(r, LayerResult) else LayerResult([r]) for r in outs]
        failed = failures(s.targets, results)
        if failed and len(failed) == len(results):
            self._rerun_wanted = False
            self.error.emit("Edit failed on every layer:\n" + "\n".join(failed))
            self._end("failed")
            return
        self.doc.undo_stack.beginMacro("Edit concepts (LEDITS)")
        try:
            for i, (target, result) in enumerate(zip(s.targets, results, strict=True)):
                made = result_layer(target, result.images[0], self._label()) if result.images else None
                if made is None:
                    continue
                old = s.layers[i]
                if old is not None and old in self.doc.layers and old.pixels.shape == made.pixels.shape:
                    self.doc.commit_pixels(
                        old,
                        (0, 0, old.width, old.height),
                        old.pixels.copy(),
                        made.pixels,
                        "LEDITS",
                        applied=False,
                    )
                    self.doc.set_layer_property(old, "name", made.name)
                elif target.source in self.doc.layers:
                    index = self.doc.index_of(target.source) + 1
                    self.doc.undo_stack.push(AddLayerCommand(self.doc, made, index, "Edited layer"))
                    s.layers[i] = made
        finally:
            self.doc.undo_stack.endMacro()
        done = f"Edited in {time.monotonic() - self._started:.1f} s"
        self.message.emit(done + "".join(f"; failed {f}" for f in failed))
        self._end("done")

    def _on_failed(self, text: str) -> None:
        if self._mine:
            self._rerun_wanted = False
            self.error.emit(f"Edit failed: {text}")
            self._end("failed")

    def _on_cancelled(self) -> None:
        if self._mine:
            if not self._rerun_wanted:
                self.message.emit("Cancelled; the document is unchanged")
            self._end("cancelled")
