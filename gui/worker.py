"""Engine runs off the GUI thread: a worker QObject moved to a QThread, reporting by signals.

The job function receives the worker: it passes `worker.callback` to the engine and may set
`worker.tag` to say what it is working on (previews carry the tag). The callback raises Cancelled once cancel() has been
asked for, and throttles what it sends to the GUI (progress ~10/s, previews ~3/s, computed only then).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from noisebrush.core.engine.progress import Progress
from noisebrush.core.errors import BadInput, Cancelled

JobFn = Callable[["EngineWorker"], Any]

PROGRESS_EVERY_S = 0.1
PREVIEW_EVERY_S = 0.3


class EngineWorker(QObject):
    """Runs one job function in its thread; every outcome ends with `finished`."""

    progress = pyqtSignal(int, int, float)  # step, total, seconds left (negative: unknown)
    preview = pyqtSignal(object, object, object)  # RGB uint8 array, box (x, y, w, h), tag from the job
    stage = pyqtSignal(str)  # the engine's stage ("compose", "refine", "denoise", "invert") when it changes
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    finished = pyqtSignal()

    def __init__(self, fn: JobFn, want_previews: bool = True) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self._want_previews = want_previews
        self._last_progress = 0.0
        self._last_preview = 0.0
        self._started = 0.0
        self._first_step: tuple[float, int] | None = None
        self._stage = ""
        self.tag: object = None  # what the job is working on now, passed along with previews

    def cancel(self) -> None:
        self._cancel.set()

    def callback(self, p: Progress) -> None:
        """The engine's per-step callback: raises Cancelled once cancel() was asked for."""
        if self._cancel.is_set():
            raise Cancelled()
        if p.stage != self._stage:
            self._stage = p.stage
            self.stage.emit(p.stage)
        now = time.monotonic()
        if self._first_step is None:
            self._first_step = (now, p.step)
        if now - self._last_progress >= PROGRESS_EVERY_S or p.step >= p.total:
            self._last_progress = now
            t0, s0 = self._first_step
            left = (now - t0) / (p.step - s0) * (p.total - p.step) if p.step > s0 else -1.0
            self.progress.emit(p.step, p.total, left)
        if self._want_previews and now - self._last_preview >= PREVIEW_EVERY_S:
            self._last_preview = now
            img = p.preview()
            if img is not None:
                self.preview.emit(np.ascontiguousarray(img).copy(), tuple(p.box), self.tag)
        if self._cancel.is_set():
            raise Cancelled()

    def should_stop(self) -> bool:
        """Asked by the engine inside model blocks, so a cancel lands within one block, not one step."""
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    @pyqtSlot()
    def run(self) -> None:
        self._started = time.monotonic()
        try:
            result = self._fn(self)
            if self._cancel.is_set():
                raise Cancelled()
            self.succeeded.emit(result)
        except Cancelled:
            self.cancelled.emit()
        except BadInput as e:
            self.failed.emit(str(e))
        except MemoryError:
            self.failed.emit("Out of memory: try a smaller selection or fewer variations")
        except Exception as e:  # the user sees what broke instead of a silent stop
            traceback.print_exc()
            self.failed.emit(f"{type(e).__name__}: {e}")
        finally:
            self.finished.emit()


def thread_for(worker: QObject) -> QThread:
    """A not yet started QThread that runs `worker.run` and then disposes of both; `worker` must have a `run`
    slot and a `finished` signal (the engine and file workers do)."""
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)  # type: ignore[attr-defined]
    worker.finished.connect(thread.quit)  # type: ignore[attr-defined]
    worker.finished.connect(worker.deleteLater)  # type: ignore[attr-defined]
    thread.finished.connect(thread.deleteLater)
    return thread


class JobRunner(QObject):
    """Starts at most one worker at a time and forwards its signals on the GUI thread."""

    progress = pyqtSignal(int, int, float)
    preview = pyqtSignal(object, object, object)
    stage = pyqtSignal(str)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    busy_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: EngineWorker | None = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    @property
    def worker(self) -> EngineWorker | None:
        return self._worker

    def start(self, fn: JobFn, want_previews: bool = True) -> EngineWorker:
        if self._worker is not None:
            raise RuntimeError("a job is already running")
        worker = EngineWorker(fn, want_previews)
        thread = thread_for(worker)
        thread.finished.connect(self._on_thread_done)
        worker.progress.connect(self.progress)
        worker.preview.connect(self.preview)
        worker.stage.connect(self.stage)
        worker.succeeded.connect(self.succeeded)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)
        self._thread, self._worker = thread, worker
        thread.start()
        self.busy_changed.emit(True)
        return worker

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _on_thread_done(self) -> None:
        self._thread = self._worker = None
        self.busy_changed.emit(False)

    def wait(self, ms: int = 30000) -> bool:
        """Block until the thread ends (used at shutdown only)."""
        thread = self._thread
        return True if thread is None else bool(thread.wait(ms))
