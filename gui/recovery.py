"""Autosave to a recovery file, offered again after a crash; and the recent-files list.

The snapshot is copied on the GUI thread (a memory copy) and written as .ora on a plain thread, so
the window never waits on PNG compression. A clean exit removes the recovery file; finding one at
start-up means the last session did not end cleanly.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, QStandardPaths, QTimer, pyqtSignal

from .document import Document
from .model.ora import write_ora

MAX_RECENT_FILES = 10


def recovery_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".local/share/NoiseBrush") / "recovery"


class AutoSaver(QObject):
    saved = pyqtSignal(str)

    def __init__(
        self, doc: Document, folder: Path | None = None, interval_s: int = 90, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.doc = doc
        self.folder = folder or recovery_dir()
        self.file = self.folder / "autosave.ora"
        self.info = self.folder / "autosave.json"
        self._saved_index = -1
        self._thread: threading.Thread | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(max(5, interval_s) * 1000)
        self.timer.timeout.connect(self.save_now)
        doc.reset.connect(self._on_reset)

    def start(self) -> None:
        self.timer.start()

    def _on_reset(self) -> None:
        self._saved_index = -1

    def save_now(self) -> bool:
        """Write a recovery snapshot if the document changed since the last one (and is unsaved)."""
        doc = self.doc
        if not doc.modified or doc.undo_stack.index() == self._saved_index:
            return False
        if self._thread is not None and self._thread.is_alive():
            return False
        layers = [la.snapshot() for la in doc.layers]
        w, h, source = doc.width, doc.height, doc.path
        self._saved_index = doc.undo_stack.index()
        target, info = self.file, self.info

        def write() -> None:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_ora(target, w, h, layers, compress_level=1)
                info.write_text(json.dumps({"source": source}))
                self.saved.emit(str(target))
            except OSError:
                pass  # a failed autosave must not disturb the user; the next tick tries again

        self._thread = threading.Thread(target=write, daemon=True, name="nb-autosave")
        self._thread.start()
        return True

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def clear(self) -> None:
        """Forget the recovery file (the document was saved or the app closes cleanly)."""
        self.wait()
        for p in (self.file, self.info):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def pending(self) -> tuple[Path, str | None] | None:
        """(recovery file, the document's own path if it had one) left by a crashed session."""
        if not self.file.exists():
            return None
        source = None
        try:
            source = json.loads(self.info.read_text()).get("source")
        except (OSError, ValueError):
            pass
        return self.file, source


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("files/recent", []) or []
    items = value if isinstance(value, list) else [value]
    return [str(p) for p in items if p]


def remember_file(settings: QSettings, path: str) -> list[str]:
    path = os.path.abspath(path)
    items = [path] + [p for p in recent_files(settings) if p != path]
    del items[MAX_RECENT_FILES:]
    settings.setValue("files/recent", items)
    return items
