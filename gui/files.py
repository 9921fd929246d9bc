"""The file verbs of the window: new, open, save, save as, recent files and crash recovery.

Reading and writing run off the GUI thread (FileJobs), so the window keeps painting while a big file
decodes or an .ora deflates. The document changes only once a file has been read whole, and a save
writes a temporary file and renames it: a failure leaves neither a half-loaded document nor a
half-written file, and its error dialog names the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from .document import Document
from .filejobs import FileJobs
from .model.imageio import OPEN_FILTER, SAVE_FILTER, is_layered, read_document, write_document
from .model.layer import Layer
from .model.pixels import composite
from .new_image import NewImageDialog
from .recovery import AutoSaver, recent_files, remember_file

TITLE = "NoiseBrush Studio"

Then = Callable[[], object]


def _snapshot(layers: list[Layer]) -> list[Layer]:
    """Copies the writer can own while painting goes on (a memory copy, far cheaper than encoding)."""
    return [la.snapshot() for la in layers]


class DocumentFiles(QObject):
    opened = pyqtSignal(str)
    saved = pyqtSignal(str)

    def __init__(
        self,
        doc: Document,
        settings: QSettings,
        autosaver: AutoSaver,
        window: QWidget,
        show_error: Callable[[str, str], object],
        notify: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self.doc, self.settings, self.autosaver = doc, settings, autosaver
        self.window, self.show_error, self.notify = window, show_error, notify
        self.jobs = FileJobs(self)
        self.recent_menu: QMenu | None = None
        self.flat_source: str | None = None  # the PNG/JPEG/WebP the document came from, if any

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def _start(
        self,
        label: str,
        fn: Callable[[], object],
        done: Callable[[Any], object],
        error: Callable[[str], object],
    ) -> bool:
        if self.jobs.start(label, fn, done, error):
            return True
        self.notify(f"Still busy: {self.jobs.label}")
        return False

    # --- unsaved changes ----------------------------------------------------------------------

    def maybe_save(self, then: Then) -> None:
        """Run `then` once unsaved changes are saved or discarded; not at all if the user cancels
        or the save fails."""
        if not self.doc.modified:
            then()
            return
        name = Path(self.doc.path).name if self.doc.path else "Untitled"
        answer = QMessageBox.question(
            self.window,
            TITLE,
            f"Save the changes to \u201c{name}\u201d first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            self.save(then)
        elif answer == QMessageBox.StandardButton.Discard:
            then()

    # --- new and open -------------------------------------------------------------------------

    def new_document(self) -> None:
        self.maybe_save(self._ask_size)

    def _ask_size(self) -> None:
        """One window-modal dialog for width and height, with presets; the document changes on OK."""
        dialog = NewImageDialog(self.doc.width, self.doc.height, self.window)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda: self._new_of_size(*dialog.image_size()))
        dialog.finished.connect(lambda _=0: dialog.deleteLater())
        dialog.open()

    def _new_of_size(self, width: int, height: int) -> None:
        self.flat_source = None
        self.doc.new(width, height)

    def open_dialog(self) -> None:
        self.maybe_save(self._ask_open)

    def _ask_open(self) -> None:
        start = str(self.settings.value("files/last_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self.window, "Open image", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str, then: Then | None = None, failed: Then | None = None) -> bool:
        """Start reading `path` off the GUI thread; False if another file job is under way.
        When it has been read, the document is replaced, `opened` is emitted and `then` runs; if it
        cannot be read, an error dialog names the problem, the document stays as it was and `failed`
        runs."""
        name = Path(path).name
        index = self.doc.undo_stack.index()

        def error(message: str) -> None:
            self.show_error("Cannot open file", f"{name}: {message}")
            if failed is not None:
                failed()

        def done(result: tuple[int, int, list[Layer]]) -> None:
            w, h, layers = result
            if not layers:
                error("the file has no layers")
                return
            load = partial(self._load, path, w, h, layers, then)
            # Painting went on while the file was read: ask before that work is replaced.
            if self.doc.undo_stack.index() != index:
                self.maybe_save(load)
            else:
                load()

        return self._start(f"Opening {name}\u2026", lambda: read_document(path), done, error)

    def _load(self, path: str, w: int, h: int, layers: list[Layer], then: Then | None) -> None:
        layered = is_layered(path)
        self.doc.load(w, h, layers, path if layered else None)
        self.flat_source = None if layered else path
        self.settings.setValue("files/last_dir", str(Path(path).parent))
        remember_file(self.settings, path)
        self.fill_recent()
        self.notify(f"Opened {Path(path).name}: {w}\u00d7{h}, {len(layers)} layer(s)")
        self.opened.emit(path)
        if then is not None:
            then()

    def open_as_layer_dialog(self, add: Callable[[str, np.ndarray], object]) -> None:
        start = str(self.settings.value("files/last_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self.window, "Open as layer", start, OPEN_FILTER)
        if path:
            self.open_as_layer(path, add)

    def open_as_layer(self, path: str, add: Callable[[str, np.ndarray], object]) -> bool:
        """Read `path` off the GUI thread, flattened, and hand its pixels to `add` (which makes the
        layer); an unreadable file gets an error dialog and leaves the document as it was."""
        name = Path(path).name

        def flat() -> np.ndarray:
            w, h, layers = read_document(path)
            return composite(layers, (0, 0, w, h))

        def done(rgba: np.ndarray) -> None:
            self.settings.setValue("files/last_dir", str(Path(path).parent))
            add(path, rgba)

        return self._start(
            f"Opening {name}\u2026",
            flat,
            done,
            lambda message: self.show_error("Cannot open file", f"{name}: {message}"),
        )

    # --- save ---------------------------------------------------------------------------------

    def save(self, then: Then | None = None) -> bool:
        if self.doc.path is None:
            return self.save_as(then)
        return self.save_to(self.doc.path, then)

    def save_as(self, then: Then | None = None) -> bool:
        start = (
            self.doc.path
            or self.flat_source
            or str(Path(str(self.settings.value("files/last_dir", Path.home()))) / "untitled.ora")
        )
        start = str(Path(start).with_suffix(".ora")) if not is_layered(start) else start
        path, _ = QFileDialog.getSaveFileName(self.window, "Save image", start, SAVE_FILTER)
        if not path:
            return False
        if not Path(path).suffix:
            path += ".ora"
        return self.save_to(path, then)

    def save_to(self, path: str, then: Then | None = None) -> bool:
        """Start writing the document to `path` off the GUI thread (.ora keeps layers, other formats
        get the flattened image); False if another file job is under way. The pixels are copied first,
        so painting can go on while it writes; `then` runs once the file is in place."""
        doc = self.doc
        layers, w, h, index = _snapshot(doc.layers), doc.width, doc.height, doc.undo_stack.index()
        name = Path(path).name
        return self._start(
            f"Saving {name}\u2026",
            lambda: write_document(path, w, h, layers),
            lambda _: self._saved(path, index, then),
            lambda message: self.show_error("Cannot save file", f"{name}: {message}"),
        )

    def _saved(self, path: str, index: int, then: Then | None) -> None:
        layered = is_layered(path)
        if layered and self.doc.undo_stack.index() == index:
            self.doc.mark_saved(path)
            self.autosaver.clear()
        elif layered:  # painting went on while it wrote: the file is older than the document
            self.doc.path = path
            self.doc.path_changed.emit()
        remember_file(self.settings, path)
        self.fill_recent()
        note = "" if layered else " (flattened; save as .ora to keep layers)"
        self.notify(f"Saved {Path(path).name}{note}")
        self.saved.emit(path)
        if then is not None:
            then()

    # --- recent files and recovery ------------------------------------------------------------

    def fill_recent(self) -> None:
        menu = self.recent_menu
        if menu is None:
            return
        menu.clear()
        files = recent_files(self.settings)
        for p in files:
            act = menu.addAction(Path(p).name)
            assert act is not None
            act.setToolTip(p)
            act.triggered.connect(lambda _=False, p=p: self.maybe_save(lambda: self.open_path(p)))
        menu.setEnabled(bool(files))

    def offer_recovery(self) -> None:
        """After a crash, offer the autosaved copy."""
        found = self.autosaver.pending()
        if found is None:
            return
        file, source = found
        answer = QMessageBox.question(
            self.window,
            TITLE,
            "NoiseBrush did not close cleanly last time. Restore the autosaved copy"
            + (f" of \u201c{Path(source).name}\u201d" if source else "")
            + "?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            self.autosaver.clear()
            return

        def restored() -> None:
            self.doc.path = source
            self.doc.undo_stack.resetClean()  # recovered work is unsaved work
            self.doc.path_changed.emit()

        self.open_path(str(file), restored, self.autosaver.clear)
