"""The main window: canvas in the middle, tools on the left, panels on the right, status at the bottom.
It wires models to widgets and owns the file verbs and dialogs."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QKeyEvent
from PyQt6.QtWidgets import (
    QApplication,
    QDockWidget,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSpinBox,
    QTabWidget,
    QTextEdit,
    QUndoView,
    QWidget,
)

from .actions import build_actions, build_menus
from .canvas import Canvas
from .clipboard import ClipboardVerbs
from .document import Document
from .engines import EngineHolder, ModelChoice, list_model_choices
from .files import TITLE, DocumentFiles
from .generation import SDEditController
from .history import DEFAULT_LIMIT, HistoryEntry, ResultHistory
from .ledits import LeditsController
from .live import LiveController
from .model.layer import Layer
from .model.pixels import feather
from .panels.brush import BrushPanel
from .panels.colour import ColourPanel
from .panels.history import HistoryPanel
from .panels.layers import LayersPanel
from .panels.ledits import LeditsPanel
from .panels.sdedit import SDEditPanel
from .placing import TransformTool
from .recovery import AutoSaver
from .theme import apply_dark
from .toolbox import make_tools
from .tools import ShapeSelectTool
from .toolstate import ToolState
from .worker import JobRunner


class MainWindow(QMainWindow):
    error_shown = pyqtSignal(str, str)  # title, text (tests and logs listen)
    _models_found = pyqtSignal(object)

    def __init__(
        self,
        settings: QSettings | None = None,
        engines: EngineHolder | None = None,
        recovery_folder: Path | None = None,
        autosave_s: int | None = None,
    ) -> None:
        super().__init__()
        app = QApplication.instance()
        if isinstance(app, QApplication) and app.property("noisebrush-themed") is None:
            apply_dark(app)
            app.setProperty("noisebrush-themed", True)
        self.settings = settings or QSettings("NoiseBrush", "Studio")
        self.doc = Document(1024, 768, self)
        self.tools = ToolState(self.settings, self)
        self.engines = engines or EngineHolder()
        self.runner = JobRunner(self)
        self.sdedit = SDEditController(self.doc, self.engines, self.runner, self)
        self.ledits = LeditsController(self.doc, self.engines, self.runner, self)
        self.results = ResultHistory(_history_limit(self.settings), self)
        self.sdedit.history = self.results
        self.live = LiveController(self.doc, self.sdedit, self.results, self)
        self.sdedit.preemptible = self.ledits.preemptible = self.live.holds_runner
        self._stages: list[str] = []
        self.dialogs: list[QMessageBox] = []
        self.autosaver = AutoSaver(
            self.doc, recovery_folder, autosave_s or int(self.settings.value("autosave/seconds", 90)), self
        )
        self.files = DocumentFiles(
            self.doc, self.settings, self.autosaver, self, self.show_error, self.status_message
        )
        self._close_when_idle = False
        self._discard_on_close = False

        self.canvas = Canvas(self.doc, self.tools)
        self.canvas.wheel_zooms = _truthy(self.settings.value("view/wheel_zooms", False))
        self.setCentralWidget(self.canvas)
        self.clipboard = ClipboardVerbs(self.doc, self.canvas.drop_point, self.status_message)
        self.tool_objects = make_tools(self.doc, self.tools, self.status_message)
        for t in self.tool_objects.values():
            if isinstance(t, ShapeSelectTool):
                t.canvas_update = self.canvas.update
            if isinstance(t, TransformTool):
                t.canvas = self.canvas
        transform = self.tool_objects["transform"]
        assert isinstance(transform, TransformTool)
        self.transform_tool: TransformTool = transform
        self.tools.tool_changed.connect(self._tool_changed)
        self._tool_changed(self.tools.tool)

        self.layers_panel = LayersPanel(self.doc)
        self.brush_panel = BrushPanel(self.tools)
        self.brush_panel.bind_transform(self.transform_tool)
        self.colour_panel = ColourPanel(self.tools)
        self.sdedit_panel = SDEditPanel(self.sdedit, self.live)
        self.results_panel = HistoryPanel(
            self.results, self.live.apply, self.rerun_result, self.set_history_limit
        )
        self.ledits_panel = LeditsPanel(self.ledits)
        self.history = QUndoView(self.doc.undo_stack)
        self.history.setEmptyLabel("Opened")
        self.actions_by_name = build_actions(self)
        self.view_menu: QMenu | None = None
        self.recent_menu = build_menus(self, self.actions_by_name)
        self._build_docks()
        self._build_status()

        gen_tabs = self.generate_tabs
        self.sdedit.running_changed.connect(lambda on: self._running(on))
        self.ledits.running_changed.connect(lambda on: self._running(on))
        for ctl in (self.sdedit, self.ledits):
            ctl.progress.connect(self._progress)
            ctl.preview_changed.connect(self.canvas.set_preview)
            ctl.message.connect(self.status_message)
            ctl.error.connect(lambda text: self.show_error("Generation", text))
        self.live.message.connect(self.status_message)
        self.results.overlay_changed.connect(self._show_result)
        self.runner.busy_changed.connect(self._runner_busy)
        self.runner.stage.connect(self._stage)
        self.doc.reset.connect(self.results.hide)
        self.doc.path_changed.connect(self._update_title)
        self.doc.undo_stack.cleanChanged.connect(lambda _: self._update_title())
        self.canvas.cursor_moved.connect(self._cursor)
        self.canvas.view_changed.connect(self._zoom_label)
        self.files.jobs.activity.connect(self._file_activity)
        self._models_found.connect(self._set_models)
        gen_tabs.setCurrentIndex(0)

        self.files.recent_menu = self.recent_menu
        self.files.fill_recent()
        self._update_title()
        self.resize(1400, 900)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._load_models()

    # --- layout -------------------------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        if self.view_menu is not None:
            self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_docks(self) -> None:
        """Generate and Layers on the right, the painting docks (colour, tool options, history) on the
        left, as in Krita: one column of four docks could not fit a 650 px high window, and the
        Generate button must never be pushed out of sight."""
        right = Qt.DockWidgetArea.RightDockWidgetArea
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        self.generate_tabs = QTabWidget()
        self.generate_tabs.addTab(self.sdedit_panel, "SDEdit")
        self.generate_tabs.addTab(self.ledits_panel, "LEDITS")
        gen = self._dock("Generate", self.generate_tabs, right, "dock-generate")
        layers = self._dock("Layers", self.layers_panel, right, "dock-layers")
        results = self._dock("Results", self.results_panel, right, "dock-results")
        colour = self._dock("Colour", self.colour_panel, left, "dock-colour")
        brush = self._dock("Tool Options", self.brush_panel, left, "dock-brush")
        hist = self._dock("History", self.history, left, "dock-history")
        self.splitDockWidget(gen, layers, Qt.Orientation.Vertical)
        self.splitDockWidget(colour, brush, Qt.Orientation.Vertical)
        self.tabifyDockWidget(brush, hist)
        self.tabifyDockWidget(layers, results)
        brush.raise_()
        layers.raise_()
        self.layers_panel.setMinimumHeight(120)
        self.resizeDocks([gen, layers], [460, 250], Qt.Orientation.Vertical)
        self.resizeDocks([colour, brush], [230, 300], Qt.Orientation.Vertical)
        self.resizeDocks([gen], [340], Qt.Orientation.Horizontal)
        self.resizeDocks([colour], [230], Qt.Orientation.Horizontal)

    def _build_status(self) -> None:
        bar = self.statusBar()
        assert bar is not None
        self.step_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.file_label = QLabel("")
        self.file_bar = QProgressBar()
        self.file_bar.setRange(0, 0)  # how long a decode takes is unknown: a busy bar
        self.file_bar.setMaximumWidth(100)
        self.file_bar.setTextVisible(False)
        self.file_bar.hide()
        self.stages_label = QLabel("")
        self.stages_label.setToolTip("The stages of the resolution plan the last run went through")
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(90)
        self.zoom_label = QLabel("")
        self.size_label = QLabel("")
        for w in (
            self.file_label,
            self.file_bar,
            self.stages_label,
            self.step_label,
            self.progress_bar,
            self.cursor_label,
            self.size_label,
            self.zoom_label,
        ):
            bar.addPermanentWidget(w)
        self.doc.reset.connect(self._doc_size)
        self._doc_size()

    def _file_activity(self, text: str) -> None:
        """A file is being read or written (text says which), or "" when that is over."""
        self.file_label.setText(text)
        self.file_bar.setVisible(bool(text))
        if not text and self._close_when_idle:
            self._close_when_idle = False
            QTimer.singleShot(0, self.close)

    def _doc_size(self) -> None:
        self.size_label.setText(f"{self.doc.width}\u00d7{self.doc.height}")

    def _zoom_label(self) -> None:
        self.zoom_label.setText(f"{self.canvas.scale * 100:.0f}%")

    def _cursor(self, x: float, y: float) -> None:
        self.cursor_label.setText(f"{int(x)}, {int(y)}")

    def _tool_changed(self, key: str) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.leave()
        self.canvas.tool = self.tool_objects[key]
        cursors = {"pan": Qt.CursorShape.OpenHandCursor, "move": Qt.CursorShape.SizeAllCursor}
        self.canvas.setCursor(cursors.get(key, Qt.CursorShape.CrossCursor))
        if key == "transform":
            self.transform_tool.begin()
        self.canvas.update()

    def _update_title(self) -> None:
        name = Path(self.doc.path).name if self.doc.path else "Untitled"
        self.setWindowTitle(f"{name}[*] \u2014 {TITLE}")
        self.setWindowModified(self.doc.modified)

    def status_message(self, text: str) -> None:
        bar = self.statusBar()
        if bar is not None:
            bar.showMessage(text, 6000)

    # --- models -------------------------------------------------------------------------------

    def _load_models(self) -> None:
        def work() -> None:
            self._models_found.emit(list_model_choices())

        threading.Thread(target=work, daemon=True, name="nb-models").start()

    def _set_models(self, models: list[ModelChoice]) -> None:
        self.sdedit_panel.set_models(models)
        self.ledits_panel.set_models(models)
        self.ledits.load_vocabulary()
        self.ledits.vocabulary_changed.connect(self.sdedit_panel.set_vocabulary)

    # --- generation status --------------------------------------------------------------------

    def _running(self, on: bool) -> None:
        self.canvas.set_running(on)
        self.progress_bar.setVisible(on)
        self.progress_bar.setRange(0, 0)
        if not on:
            self.step_label.setText("")

    def _progress(self, step: int, total: int, left: float) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(step)
        eta = f" \u00b7 {left:.0f} s left" if left >= 0 else ""
        self.step_label.setText(f"{self._batch_place()}step {step}/{total}{eta}")

    def _runner_busy(self, busy: bool) -> None:
        if busy:
            self._stages = []

    def _stage(self, name: str) -> None:
        """The engine moved to another stage of its plan: the status bar lists the stages this run went
        through (compose at the prior's scale, then refine at full size; or one denoise)."""
        if name not in self._stages:
            self._stages.append(name)
        self.stages_label.setText("stages: " + " \u2192 ".join(self._stages))

    # --- results ------------------------------------------------------------------------------

    def _show_result(self, entry: HistoryEntry | None) -> None:
        if entry is None:
            self.canvas.set_overlay(None)
        else:
            self.canvas.set_overlay(entry.image, entry.layer.x, entry.layer.y)
        apply = self.actions_by_name.get("apply_result") if hasattr(self, "actions_by_name") else None
        if apply is not None:
            apply.setEnabled(entry is not None)

    def apply_result(self) -> None:
        self.live.apply()

    def step_result(self, delta: int) -> None:
        """One key steps through the variations of the last run, or through the history of results."""
        if self.sdedit.pending is not None:
            self.sdedit.step_variation(delta)
        else:
            self.results.step(delta)

    def rerun_result(self, entry: HistoryEntry) -> None:
        """Run `entry`'s settings again with a new seed (live: the next live result uses it)."""
        self.sdedit.set_options(
            model=entry.model,
            strength=entry.strength,
            steps=entry.steps,
            prompt=entry.prompt,
            negative_prompt=entry.negative_prompt,
        )
        seed = random.randrange(0, 2**31)
        if self.live.enabled:
            self.sdedit.set_options(seed=seed)
        else:
            self.sdedit.generate(seed)

    def set_history_limit(self, limit: int) -> None:
        self.results.set_limit(limit)
        self.settings.setValue("history/size", limit)

    def _batch_place(self) -> str:
        """ "layer 2 of 5, " while a run works through several layers; "" for one."""
        ctl = self.sdedit if self.sdedit.running else self.ledits if self.ledits.running else None
        worker = self.runner.worker
        if ctl is None or worker is None or ctl.batch_size < 2 or not isinstance(worker.tag, int):
            return ""
        return f"layer {worker.tag + 1} of {ctl.batch_size}, "

    def cancel_all(self) -> None:
        if self.sdedit.running:
            self.sdedit.cancel()
        elif self.ledits.running:
            self.ledits.cancel()
        elif self.canvas.tool is not None:
            self.canvas.tool.cancel()

    def undo(self) -> None:
        """Undo; a move or transform still in progress is the last thing done, so it goes first."""
        tool = self.canvas.tool
        if tool is not None and tool.busy():
            tool.cancel()
        else:
            self.doc.undo_stack.undo()

    def redo(self) -> None:
        tool = self.canvas.tool
        if tool is not None and tool.busy():
            return  # redoing under a live transform would change the pixels it works from
        self.doc.undo_stack.redo()

    def set_wheel_zooms(self, on: bool) -> None:
        self.canvas.wheel_zooms = on
        self.settings.setValue("view/wheel_zooms", on)

    def open_as_layer(self) -> None:
        self.files.open_as_layer_dialog(self.clipboard.open_as_layer)

    # --- selection verbs ----------------------------------------------------------------------

    def select_all(self) -> None:
        self.doc.set_selection(np.full((self.doc.height, self.doc.width), 255, np.uint8), "Select all")

    def deselect(self) -> None:
        self.doc.set_selection(np.zeros((self.doc.height, self.doc.width), np.uint8), "Deselect")

    def invert_selection(self) -> None:
        self.doc.set_selection(255 - self.doc.selection.mask, "Invert selection")

    def feather_selection(self, radius: float | None = None) -> None:
        if self.doc.selection.is_empty:
            self.status_message("Nothing is selected to feather")
            return
        if radius is None:
            value, ok = QInputDialog.getInt(
                self, "Feather selection", "Radius (pixels):", self.tools.feather, 1, 500
            )
            if not ok:
                return
            self.tools.feather = radius = value
        self.doc.set_selection(feather(self.doc.selection.mask, radius), f"Feather {radius:g} px")

    # --- layer verbs --------------------------------------------------------------------------

    def _with_active(self, fn: Callable[[Layer], Any]) -> None:
        if self.doc.active is not None:
            fn(self.doc.active)

    def duplicate_layer(self) -> None:
        self._with_active(self.doc.duplicate_layer)

    def delete_layer(self) -> None:
        self._with_active(self.doc.delete_layer)

    def merge_down(self) -> None:
        layer = self.doc.active
        if layer is None:
            return
        reason = self.doc.why_not_merge_down(layer)
        if reason is not None:
            self.status_message(reason)
        else:
            self.doc.merge_down(layer)

    def toggle_visible(self) -> None:
        self._with_active(lambda la: self.doc.set_layer_property(la, "visible", not la.visible))

    def toggle_lock(self) -> None:
        self._with_active(lambda la: self.doc.set_layer_property(la, "locked", not la.locked))

    # --- errors -------------------------------------------------------------------------------

    def show_error(self, title: str, text: str) -> QMessageBox:
        """A window-modal error dialog that does not block the event loop."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _=0, b=box: self.dialogs.remove(b) if b in self.dialogs else None)
        self.dialogs.append(box)
        box.open()
        self.error_shown.emit(title, text)
        self.status_message(text.splitlines()[0] if text else title)
        return box

    # --- events -------------------------------------------------------------------------------

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        """Space held anywhere but in a text field pans the canvas."""
        if event is not None and event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
                focus = QApplication.focusWidget()
                if (
                    not isinstance(focus, (QLineEdit, QTextEdit, QPlainTextEdit, QSpinBox))
                    and self.isActiveWindow()
                ):
                    self.canvas.set_temp_pan(event.type() == QEvent.Type.KeyPress)
                    return True
        return super().eventFilter(obj, event)

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802
        assert event is not None
        if self.files.busy:  # a half-written file would be left behind: close once it is in place
            self._close_when_idle = True
            self.status_message(f"{self.files.jobs.label} The window closes when it is done.")
            event.ignore()
            return
        if self.doc.modified and not self._discard_on_close:
            event.ignore()
            self.files.maybe_save(self._close_anyway)
            return
        self.live.set_enabled(False)  # no live run may start once the window has gone
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(30000)
        self.tools.save()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.autosaver.clear()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        event.accept()

    def _close_anyway(self) -> None:
        """Saved or discarded: close for real (from the event loop, not inside closeEvent)."""
        self._discard_on_close = True
        QTimer.singleShot(0, self.close)

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.autosaver.start()
            QTimer.singleShot(0, self.canvas.fit)


def _history_limit(settings: QSettings) -> int:
    try:
        return max(1, int(settings.value("history/size", DEFAULT_LIMIT)))
    except (TypeError, ValueError):  # a hand-edited settings file
        return DEFAULT_LIMIT


def _truthy(value: object) -> bool:
    """A QSettings bool: INI files hand it back as the string "true" or "false"."""
    return value is True or str(value).lower() == "true"
