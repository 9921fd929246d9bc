"""The window's actions: menus, toolbars and shortcuts in one table, bound to the window's verbs."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import qtawesome as qta
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QMenu, QMenuBar, QToolBar

# The window these actions call into (window.py's MainWindow, which builds them). Named as Any rather than
# imported: the window imports this module, and a type-only import back would make the two a cycle.
MainWindow = Any

TOOL_ACTIONS = (
    ("brush", "mdi6.brush", "Brush", "B"),
    ("eraser", "mdi6.eraser", "Eraser", "E"),
    ("picker", "mdi6.eyedropper", "Pick colour", "I"),
    ("fill", "mdi6.format-color-fill", "Fill", "G"),
    ("rect", "mdi6.selection-drag", "Rectangle select", "M"),
    ("ellipse", "mdi6.selection-ellipse", "Ellipse select", "Shift+M"),
    ("lasso", "mdi6.lasso", "Lasso select", "L"),
    ("maskbrush", "mdi6.brush-variant", "Mask brush (paint the selection)", "Shift+B"),
    ("pan", "mdi6.hand-back-right", "Pan (or hold Space)", "H"),
    ("move", "mdi6.cursor-move", "Move layer", "V"),
    ("transform", "mdi6.vector-square-edit", "Transform layer (Enter applies, Esc cancels)", "Ctrl+T"),
)


def _act(
    win: MainWindow,
    text: str,
    slot: Callable[[], object],
    shortcut: str | list[str] | QKeySequence.StandardKey | None = None,
    icon: str | None = None,
) -> QAction:
    a = QAction(text, win)
    if icon:
        a.setIcon(qta.icon(icon))
    if isinstance(shortcut, list):
        a.setShortcuts([QKeySequence(s) for s in shortcut])
    elif isinstance(shortcut, QKeySequence.StandardKey):
        a.setShortcut(QKeySequence(shortcut))
    elif shortcut:
        a.setShortcut(QKeySequence(shortcut))
    if a.shortcut().toString():
        label = text.replace("&", "").rstrip(".\u2026")
        a.setToolTip(f"{label} ({a.shortcut().toString()})")
    a.triggered.connect(lambda _=False: slot())
    win.addAction(a)  # shortcuts work even when the menu bar is hidden
    return a


def build_actions(win: MainWindow) -> dict[str, QAction]:
    doc, canvas, tools = win.doc, win.canvas, win.tools
    a: dict[str, QAction] = {}
    a["new"] = _act(win, "&New\u2026", win.files.new_document, "Ctrl+N", "mdi6.file-outline")
    a["open"] = _act(win, "&Open\u2026", win.files.open_dialog, "Ctrl+O", "mdi6.folder-open-outline")
    a["save"] = _act(win, "&Save", win.files.save, "Ctrl+S", "mdi6.content-save-outline")
    a["save_as"] = _act(
        win, "Save &As\u2026", win.files.save_as, "Ctrl+Shift+S", "mdi6.content-save-edit-outline"
    )
    a["open_layer"] = _act(
        win, "Open as &Layer\u2026", win.open_as_layer, "Ctrl+Alt+O", "mdi6.file-image-plus-outline"
    )
    a["quit"] = _act(win, "&Quit", win.close, "Ctrl+Q")
    a["undo"] = _act(win, "&Undo", win.undo, "Ctrl+Z", "mdi6.undo")
    a["redo"] = _act(win, "&Redo", win.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "mdi6.redo")
    clip = win.clipboard
    a["cut"] = _act(win, "Cu&t", clip.cut, "Ctrl+X", "mdi6.content-cut")
    a["copy"] = _act(win, "&Copy", clip.copy, "Ctrl+C", "mdi6.content-copy")
    a["copy_merged"] = _act(win, "Copy &Merged", clip.copy_merged, "Ctrl+Shift+C", "mdi6.content-copy")
    # Every paste makes a new layer (Krita's habit), so Ctrl+V and GIMP's "as new layer" are one verb.
    a["paste"] = _act(
        win, "&Paste as New Layer", clip.paste, ["Ctrl+V", "Ctrl+Shift+V"], "mdi6.content-paste"
    )
    a["paste_in_place"] = _act(win, "Paste in Pla&ce", lambda: clip.paste(in_place=True), "Ctrl+Alt+V")
    a["select_all"] = _act(win, "Select &All", win.select_all, "Ctrl+A", "mdi6.select-all")
    a["deselect"] = _act(win, "&Deselect", win.deselect, "Ctrl+Shift+A", "mdi6.selection-off")
    a["invert"] = _act(win, "&Invert Selection", win.invert_selection, "Ctrl+I", "mdi6.select-inverse")
    a["feather"] = _act(win, "&Feather Selection\u2026", win.feather_selection, "Shift+F6", "mdi6.blur")
    a["layer_new"] = _act(win, "&New Layer", lambda: doc.add_layer(), "Ctrl+Shift+N", "mdi6.layers-plus")
    a["layer_dup"] = _act(win, "&Duplicate Layer", win.duplicate_layer, "Ctrl+J", "mdi6.content-duplicate")
    a["layer_del"] = _act(win, "De&lete Layer", win.delete_layer, None, "mdi6.delete-outline")
    a["layer_merge"] = _act(win, "&Merge Down", win.merge_down, "Ctrl+E", "mdi6.layers-triple-outline")
    a["layer_hide"] = _act(win, "&Show/Hide Layer", win.toggle_visible, None, "mdi6.eye-outline")
    a["layer_lock"] = _act(win, "&Lock/Unlock Layer", win.toggle_lock, None, "mdi6.lock-outline")
    a["zoom_in"] = _act(
        win, "Zoom &In", lambda: canvas.zoom_at(1.25), ["Ctrl+=", "Ctrl++", "+"], "mdi6.magnify-plus-outline"
    )
    a["zoom_out"] = _act(
        win, "Zoom &Out", lambda: canvas.zoom_at(0.8), ["Ctrl+-", "-"], "mdi6.magnify-minus-outline"
    )
    a["fit"] = _act(win, "&Fit to Window", canvas.fit, "Ctrl+0", "mdi6.fit-to-screen-outline")
    a["actual"] = _act(win, "&Actual Pixels", lambda: canvas.set_scale(1.0), "Ctrl+1", "mdi6.magnify-scan")
    a["swap_colors"] = _act(win, "S&wap Colours", tools.swap_colors, "X", "mdi6.swap-horizontal")
    a["default_colors"] = _act(win, "&Default Colours", tools.default_colors, "D", "mdi6.invert-colors")
    a["wheel_zooms"] = _act(
        win,
        "Mouse &Wheel Zooms (Ctrl+Wheel Scrolls)",
        lambda: win.set_wheel_zooms(a["wheel_zooms"].isChecked()),
    )
    a["wheel_zooms"].setCheckable(True)
    a["wheel_zooms"].setChecked(canvas.wheel_zooms)
    a["bigger"] = _act(win, "Bigger Brush", tools.bigger, "]")
    a["smaller"] = _act(win, "Smaller Brush", tools.smaller, "[")
    a["generate"] = _act(win, "&Generate (SDEdit)", win.sdedit.generate, "Ctrl+Return", "mdi6.creation")
    a["cancel"] = _act(win, "&Cancel Generation", win.cancel_all, "Esc", "mdi6.close-circle-outline")
    a["live"] = _act(win, "&Live Mode", win.live.toggle, "Ctrl+L", "mdi6.motion-play-outline")
    a["live"].setCheckable(True)
    win.live.enabled_changed.connect(a["live"].setChecked)
    # Enabled only while a result is on show, so Enter reaches a text field or a transform otherwise.
    a["apply_result"] = _act(
        win, "&Apply Result as Layer", win.apply_result, ["Return", "Enter"], "mdi6.check-bold"
    )
    a["apply_result"].setEnabled(False)
    # Enter applies where the painter paints: on the canvas, not in the prompt field.
    win.removeAction(a["apply_result"])
    a["apply_result"].setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    canvas.addAction(a["apply_result"])
    a["next_result"] = _act(win, "&Next Result", lambda: win.step_result(1), ".", "mdi6.chevron-right")
    a["prev_result"] = _act(win, "&Previous Result", lambda: win.step_result(-1), ",", "mdi6.chevron-left")

    group = QActionGroup(win)
    group.setExclusive(True)
    for key, icon, text, shortcut in TOOL_ACTIONS:
        act = _act(win, text, partial(tools.set_tool, key), shortcut, icon)
        act.setCheckable(True)
        group.addAction(act)
        a[f"tool_{key}"] = act
    tools.tool_changed.connect(lambda k: a[f"tool_{k}"].setChecked(True))
    # Ctrl+T again after Enter starts a new transform: the tool is already chosen.
    a["tool_transform"].triggered.connect(lambda _=False: win.transform_tool.begin())
    a[f"tool_{tools.tool}"].setChecked(True)

    doc.undo_stack.canUndoChanged.connect(a["undo"].setEnabled)
    doc.undo_stack.canRedoChanged.connect(a["redo"].setEnabled)
    a["undo"].setEnabled(False)
    a["redo"].setEnabled(False)
    return a


def _menu(bar: QMenuBar, title: str) -> QMenu:
    menu = bar.addMenu(title)
    assert menu is not None  # addMenu(title) makes the menu; the stubs type every overload as optional
    return menu


def build_menus(win: MainWindow, a: dict[str, QAction]) -> QMenu:
    """Menus and toolbars; returns the Open Recent menu for the window to fill."""
    bar = win.menuBar()
    assert bar is not None
    file = _menu(bar, "&File")
    recent = QMenu("Open &Recent", win)
    for key in ("new", "open"):
        file.addAction(a[key])
    file.addMenu(recent)
    file.addAction(a["open_layer"])
    file.addSeparator()
    for key in ("save", "save_as"):
        file.addAction(a[key])
    file.addSeparator()
    file.addAction(a["quit"])
    edit = _menu(bar, "&Edit")
    edit.addAction(a["undo"])
    edit.addAction(a["redo"])
    edit.addSeparator()
    for key in ("cut", "copy", "copy_merged", "paste", "paste_in_place"):
        edit.addAction(a[key])
    select = _menu(bar, "&Select")
    for key in ("select_all", "deselect", "invert", "feather"):
        select.addAction(a[key])
    layer = _menu(bar, "&Layer")
    for key in ("layer_new", "layer_dup", "layer_del", "layer_merge", "layer_hide", "layer_lock"):
        layer.addAction(a[key])
    view = _menu(bar, "&View")
    for key in ("zoom_in", "zoom_out", "fit", "actual"):
        view.addAction(a[key])
    view.addSeparator()
    view.addAction(a["wheel_zooms"])
    tools_menu = _menu(bar, "&Tools")
    for key, *_ in TOOL_ACTIONS:
        tools_menu.addAction(a[f"tool_{key}"])
    tools_menu.addSeparator()
    tools_menu.addAction(a["swap_colors"])
    tools_menu.addAction(a["default_colors"])
    tools_menu.addAction(a["bigger"])
    tools_menu.addAction(a["smaller"])
    gen = _menu(bar, "&Generate")
    gen.addAction(a["generate"])
    gen.addAction(a["cancel"])
    gen.addSeparator()
    for key in ("live", "apply_result", "next_result", "prev_result"):
        gen.addAction(a[key])
    win.view_menu = _menu(bar, "&Window")

    main = QToolBar("Main")
    main.setObjectName("main-toolbar")
    main.setMovable(False)
    for name in (
        "new",
        "open",
        "save",
        None,
        "undo",
        "redo",
        None,
        "zoom_out",
        "zoom_in",
        "fit",
        None,
        "deselect",
        "invert",
    ):
        if name is None:
            main.addSeparator()
        else:
            main.addAction(a[name])
    win.addToolBar(Qt.ToolBarArea.TopToolBarArea, main)

    toolbox = QToolBar("Tools")
    toolbox.setObjectName("tools-toolbar")
    toolbox.setMovable(False)
    for key, *_ in TOOL_ACTIONS:
        toolbox.addAction(a[f"tool_{key}"])
    win.addToolBar(Qt.ToolBarArea.LeftToolBarArea, toolbox)
    return recent
