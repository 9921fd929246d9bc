"""Live mode: the picture follows the brush. Each finished change of the document (a stroke, a fill, an undo)
or of the SDEdit settings (a slider move) asks for an SDEdit of the selection, or of the canvas when nothing
is selected, with the panel's settings and its seed, so the picture changes only where the painting did.

A newer change cancels the run under way at once (the engine checks the worker's stop flag inside model
blocks), and a result cut before the newest change is never shown. Results go to the history and show on the
canvas as an overlay that never enters the undo history; Apply commits the one shown as a new layer in one
undo step. Nothing runs while nothing changes: one single-shot timer gathers a burst of changes, no polling.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput

from .document import Document
from .generation import SDEditController
from .history import HistoryEntry, ResultHistory, commit
from .targets import Target, build_targets, result_layer
from .worker import EngineWorker

# A slider drag or a quick run of clicks is one request: it starts once the changes pause this long.
GATHER_MS = 40
# Torch threads of a live run. A run at the prior's scale is many small operations, and while the painter paints
# the GUI thread wants a core too: on the 2-core CPU two threads made the run 7x slower than one (16.1 s against
# 2.3 s p50, `noisebrush bench live`, docs/BENCH.md), their workers waiting on each other at every operation.
LIVE_THREADS = 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on `n` torch threads, then go back (only one job runs at a time). Nothing to do when
    torch is not loaded: then the engine does not use it."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LiveController(QObject):
    enabled_changed = pyqtSignal(bool)
    running_changed = pyqtSignal(bool)
    message = pyqtSignal(str)
    result_shown = pyqtSignal(float)  # seconds from the change the result answers to its overlay being set
    applied = pyqtSignal(object)  # the Layer the shown result became

    def __init__(
        self,
        doc: Document,
        sdedit: SDEditController,
        history: ResultHistory,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.doc, self.sdedit, self.history = doc, sdedit, history
        self.runner, self.engines = sdedit.runner, sdedit.engines
        self.enabled = False
        self._change = 0  # counts changes; a result answers the count it was cut at
        self._changed_at = 0.0
        self._job_change: int | None = None  # what the running job answers; None: no job of ours
        self._target: Target | None = None
        self._wanted = False  # a request waits for the runner to be free
        self._quiet = False  # our own Apply is not a change to follow
        self._job_started = 0.0
        self.last_run_s = 0.0  # how long the last shown result's run took, from its start to its result
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(GATHER_MS)
        self._timer.timeout.connect(self._kick)
        doc.undo_stack.indexChanged.connect(self._on_change)
        doc.reset.connect(self._on_change)
        sdedit.options_changed.connect(self._on_change)
        self.runner.succeeded.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busy_changed.connect(self._on_busy)

    @property
    def running(self) -> bool:
        return self._job_change is not None and self.runner.busy

    def holds_runner(self) -> bool:
        """Whether the runner is busy with a live run (which a Generate may cancel)."""
        return self.running

    def set_enabled(self, on: bool) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self._on_change()
        else:
            self._timer.stop()
            self._wanted = False
            if self.running:
                self.runner.cancel()
            if self.history.overlay is not None and self.history.overlay.live:
                self.history.hide()
        self.enabled_changed.emit(on)
        self.message.emit("Live mode on: the picture follows each stroke" if on else "Live mode off")

    def toggle(self) -> None:
        self.set_enabled(not self.enabled)

    # --- requests -----------------------------------------------------------------------------

    def _on_change(self, *_: object) -> None:
        if not self.enabled or self._quiet:
            return
        self._change += 1
        self._changed_at = time.monotonic()
        if self.running:
            self.runner.cancel()  # at once: the run under way answers an older picture
        self._timer.start()

    def request(self, target: Target) -> SDEditRequest:
        """The panel's request for `target` (its LoRAs and control included: a few-step LoRA is what Live
        wants most), one result, as a live draft (the engine's plan.live_run: the prior's scale and schedule)."""
        (req,) = self.sdedit.requests([target])
        return replace(req, variations=1, live=True)

    def _kick(self) -> None:
        if not self.enabled:
            return
        if self.runner.busy:
            self._wanted = True  # started when the runner is free (ours was cancelled in _on_change)
            return
        self._wanted = False
        targets = build_targets(self.doc, "selection")
        if not targets:
            return
        target = targets[0]
        try:
            req = self.request(target)
            req.validate()
        except BadInput as e:
            self.message.emit(f"Live: {e}")
            return
        engines = self.engines

        def job(worker: EngineWorker) -> list[np.ndarray]:
            engine = engines.get()
            with torch_threads(LIVE_THREADS):
                out = engine.sdedit(req, callback=worker.callback, should_stop=worker.should_stop)
            engines.mark_warm(req.model, req.device)
            return out

        self._target = target
        self._job_change = self._change
        self._job_started = time.monotonic()
        self.runner.start(job, want_previews=False)
        self.running_changed.emit(True)

    def _on_busy(self, busy: bool) -> None:
        if not busy and self._wanted and self.enabled:
            self._kick()

    # --- results ------------------------------------------------------------------------------

    def _finish(self) -> int | None:
        answered, self._job_change = self._job_change, None
        self.running_changed.emit(False)
        return answered

    def _on_done(self, outs: object) -> None:
        if self._job_change is None:
            return
        answered = self._finish()
        target = self._target
        if not self.enabled or answered != self._change or target is None:
            return  # a newer change wants a newer picture: this one is never shown
        assert isinstance(outs, list) and outs
        layer = result_layer(target, outs[0], "Live")
        if layer is None:
            return
        o = self.sdedit.options
        entry = HistoryEntry(
            layer,
            target.source.uid,
            o.seed,
            o.strength,
            o.prompt,
            o.model,
            o.steps,
            o.negative_prompt,
            live=True,
        )
        self.last_run_s = time.monotonic() - self._job_started
        self.history.peek(None)
        self.history.add(entry, show=True)
        self.result_shown.emit(time.monotonic() - self._changed_at)

    def _on_failed(self, text: str) -> None:
        if self._job_change is not None:
            self._finish()
            self.message.emit(f"Live: {text}")

    def _on_cancelled(self) -> None:
        if self._job_change is not None:
            self._finish()

    # --- apply --------------------------------------------------------------------------------

    def apply(self, entry: HistoryEntry | None = None) -> bool:
        """Commit the result on show (or `entry`) as a new layer: one undo step; the overlay goes."""
        entry = entry or self.history.overlay
        if entry is None:
            self.message.emit("No result on show to apply")
            return False
        self._quiet = True
        try:
            layer = commit(self.doc, entry)
        finally:
            self._quiet = False
        self.history.hide()
        self.message.emit(f"Applied {entry.layer_name} as a new layer")
        self.applied.emit(layer)
        return True
