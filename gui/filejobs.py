"""File reads and writes off the GUI thread: a worker QObject moved to a QThread, one job at a time.

Decoding a large PNG or deflating the layers of an .ora takes seconds, and the window must keep
painting meanwhile. The job function touches no Qt object; its result or its error message comes
back by signal, and the caller's callbacks run on the GUI thread.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from .model.ora import FileFormatError
from .worker import thread_for

JobFn = Callable[[], Any]


class FileWorker(QObject):
    """Runs one job function in its thread; every outcome ends with `finished`."""

    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    finished = pyqtSignal()

    def __init__(self, fn: JobFn) -> None:
        super().__init__()
        self._fn = fn

    @pyqtSlot()
    def run(self) -> None:
        try:
            self.succeeded.emit(self._fn())
        except (FileFormatError, OSError, ValueError) as e:
            self.failed.emit(str(e))
        except MemoryError:
            self.failed.emit("not enough memory for an image this large")
        except Exception as e:  # the user sees what broke instead of a busy bar that never ends
            traceback.print_exc()
            self.failed.emit(f"{type(e).__name__}: {e}")
        finally:
            self.finished.emit()


class FileJobs(QObject):
    """Starts at most one file job at a time; `activity` says what runs now ("" when idle)."""

    activity = pyqtSignal(str)
    _succeeded = pyqtSignal(object)
    _failed = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._label = ""
        self._on_done: Callable[[Any], object] | None = None
        self._on_error: Callable[[str], object] | None = None
        self._threads: dict[QThread, FileWorker] = {}  # Python owns them until their thread ends
        # Relayed through this object's own signals so the callbacks run on its (the GUI) thread.
        self._succeeded.connect(self._done)
        self._failed.connect(self._error)

    @property
    def busy(self) -> bool:
        return bool(self._label)

    @property
    def label(self) -> str:
        return self._label

    def start(
        self, label: str, fn: JobFn, on_done: Callable[[Any], object], on_error: Callable[[str], object]
    ) -> bool:
        """Run `fn` off the GUI thread, then `on_done(result)` or `on_error(message)` on it.
        False (and nothing runs) while another job is under way."""
        if self.busy:
            return False
        worker = FileWorker(fn)
        thread = thread_for(worker)
        worker.succeeded.connect(self._succeeded)
        worker.failed.connect(self._failed)
        thread.finished.connect(lambda t=thread: self._threads.pop(t, None))
        self._threads[thread] = worker
        self._label = label or "Working"
        self._on_done, self._on_error = on_done, on_error
        thread.start()
        self.activity.emit(self._label)
        return True

    def _settle(self) -> tuple[Callable[[Any], object] | None, Callable[[str], object] | None]:
        """Become idle before the callbacks run, so they may start the next job (save, then open)."""
        done, error = self._on_done, self._on_error
        self._on_done = self._on_error = None
        self._label = ""
        self.activity.emit("")
        return done, error

    def _done(self, result: object) -> None:
        done, _ = self._settle()
        if done is not None:
            done(result)

    def _error(self, message: str) -> None:
        _, error = self._settle()
        if error is not None:
            error(message)

    def wait(self, ms: int = 60000) -> bool:
        """Block until every job thread has ended (shutdown and tests only)."""
        return all(t.wait(ms) for t in list(self._threads))
