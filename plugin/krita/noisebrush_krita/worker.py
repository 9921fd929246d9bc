"""The network half of a generation on a QThread; results and previews come back by signal."""

from __future__ import annotations

from typing import Any

from .generate import Cancelled, Stop, Target, run_jobs
from .nb_client import Client
from .nb_edit import Box, Settings
from .qtcompat import QObject, pyqtSignal


class Worker(QObject):
    """Moved to a QThread: `started -> run`; emits `done` / `failed` / `cancelled` exactly once."""

    progress = pyqtSignal(int, int, int)  # target index, step, total
    preview = pyqtSignal(int, object, bytes)  # target index, box, RGBA bytes
    done = pyqtSignal(object)  # list[list[bytes]]
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(self, client: Client, settings: Settings, targets: list[Target]) -> None:
        super().__init__()
        self.client, self.settings, self.targets = client, settings, targets
        self.stop = Stop()  # set from the GUI thread: the server hears of it at once

    def run(self) -> None:
        try:
            results = run_jobs(
                self.client, self.settings, self.targets, self._progress, self._preview, self.stop
            )
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # shown to the user; the docker stays usable
            self.failed.emit(str(exc))
        else:
            self.done.emit(results)

    def _progress(self, i: int, step: int, total: int) -> None:
        self.progress.emit(i, step, total)

    def _preview(self, i: int, box: Box, rgba: bytes) -> None:
        self.preview.emit(i, box, rgba)


def start(worker: Worker, thread: Any) -> None:
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    for signal in (worker.done, worker.failed, worker.cancelled):
        signal.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.start()
