"""Painting, layers, selection and undo, driven through the real window offscreen."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtTest import QTest

from noisebrush.gui.model.layer import Layer


def _widget_point(win, x: float, y: float) -> QPoint:
    return win.canvas.to_widget(QPointF(x, y)).toPoint()


def _drag(qtbot, win, points: list[tuple[float, float]]) -> None:
    canvas = win.canvas
    QTest.mousePress(
        canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _widget_point(win, *points[0])
    )
    for p in points[1:]:
        QTest.mouseMove(canvas, _widget_point(win, *p))
    QTest.mouseRelease(
        canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _widget_point(win, *points[-1])
    )


def _new(win, w: int = 256, h: int = 192) -> None:
    win.doc.new(w, h)
    win.canvas.set_scale(1.0)
    win.canvas.origin = QPointF(10, 10)


def test_brush_changes_pixels_under_the_brush_only_and_undo_restores_exactly(qtbot, window):
    _new(window)
    layer = window.doc.add_layer("Paint")
    window.tools.set_tool("brush")
    window.tools.set(size=20.0, hardness=1.0, opacity=1.0)
    window.tools.set_color(QColor(200, 20, 30))
    before = layer.pixels.copy()
    _drag(qtbot, window, [(50, 50), (120, 60), (150, 100)])
    changed = (layer.pixels != before).any(axis=2)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    # Nothing outside the stroke's reach (radius 10 plus the antialiased edge) changed.
    assert xs.min() >= 50 - 12 and xs.max() <= 150 + 12 and ys.min() >= 50 - 12 and ys.max() <= 100 + 12
    assert tuple(layer.pixels[60, 120]) == (200, 20, 30, 255)
    assert tuple(layer.pixels[180, 240]) == (0, 0, 0, 0)
    window.doc.undo_stack.undo()
    assert np.array_equal(layer.pixels, before)
    window.doc.undo_stack.redo()
    assert tuple(layer.pixels[60, 120]) == (200, 20, 30, 255)


def test_one_stroke_is_one_undo_step_and_stores_only_its_box(qtbot, window):
    _new(window)
    window.doc.add_layer()
    n = window.doc.undo_stack.count()
    window.tools.set(size=10.0)
    _drag(qtbot, window, [(20, 20), (40, 30)])
    assert window.doc.undo_stack.count() == n + 1
    cmd = window.doc.undo_stack.command(n)
    child = cmd.child(0) if cmd.childCount() else cmd
    assert child.old.shape[0] < 40 and child.old.shape[1] < 50


def test_eraser_lowers_alpha_and_selection_clips_paint(qtbot, window):
    _new(window)
    layer = window.doc.layers[0]
    window.tool_objects["rect"].select([(0, 0), (100, 192)], "replace")
    window.tools.set_tool("eraser")
    window.tools.set(size=30.0, hardness=1.0, opacity=1.0)
    _drag(qtbot, window, [(60, 80), (140, 80)])
    assert layer.pixels[80, 70, 3] == 0  # inside the selection: erased
    assert layer.pixels[80, 130, 3] == 255  # outside: untouched


def test_locked_or_hidden_layer_is_not_painted(qtbot, window):
    _new(window)
    layer = window.doc.add_layer()
    window.doc.set_layer_property(layer, "locked", True)
    before = layer.pixels.copy()
    _drag(qtbot, window, [(30, 30), (80, 80)])
    assert np.array_equal(layer.pixels, before)


def test_fill_and_picker(qtbot, window):
    _new(window)
    layer = window.doc.layers[0]
    window.tools.set_color(QColor(0, 0, 255))
    window.tools.set_tool("fill")
    QTest.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=_widget_point(window, 5, 5))
    assert tuple(layer.pixels[100, 100]) == (0, 0, 255, 255)
    window.tools.set_color(QColor(9, 9, 9))
    window.tools.set_tool("picker")
    QTest.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=_widget_point(window, 50, 50))
    assert window.tools.color.name() == "#0000ff"
    window.doc.undo_stack.undo()
    assert tuple(layer.pixels[100, 100]) == (255, 255, 255, 255)


def test_painting_a_small_layer_grows_it_in_the_same_undo_step(qtbot, window):
    _new(window)
    small = Layer("small", np.zeros((10, 10, 4), np.uint8), 100, 100)
    window.doc.insert_layer(small, 1)
    window.tools.set(size=8.0)
    _drag(qtbot, window, [(20, 20), (25, 25)])
    assert small.rect == (0, 0, 256, 192)
    window.doc.undo_stack.undo()
    assert small.rect == (100, 100, 10, 10)


def test_layer_verbs_undo(qtbot, window):
    _new(window)
    doc = window.doc
    a = doc.add_layer("A")
    b = doc.add_layer("B")
    assert [la.name for la in doc.layers] == ["Background", "A", "B"]
    doc.set_layer_property(b, "name", "Bee")
    doc.set_layer_property(b, "visible", False)
    doc.set_layer_property(b, "opacity", 0.4)
    doc.set_layer_property(b, "opacity", 0.3)  # merges with the previous opacity step
    dup = doc.duplicate_layer(a)
    assert dup.name == "A copy" and dup.pixels is not a.pixels
    doc.delete_layer(dup)
    # Drag "Bee" (top row) below "A" in the list: rows count from the top.
    model = window.layers_panel.model
    mime = model.mimeData([model.index(0)])
    model.dropMimeData(mime, Qt.DropAction.MoveAction, 2, 0, model.index(-1))
    assert [la.name for la in doc.layers] == ["Background", "Bee", "A"]
    for _ in range(6):  # rename, hide, opacity (merged), duplicate, delete, move
        doc.undo_stack.undo()
    assert [la.name for la in doc.layers] == ["Background", "A", "B"]
    assert b.visible and b.opacity == 1.0


def test_merge_down_composites_and_undoes(qtbot, window):
    _new(window, 64, 64)
    doc = window.doc
    bg = doc.layers[0]
    top = doc.add_layer("top")
    top.pixels[10:20, 10:20] = (255, 0, 0, 255)
    doc.set_layer_property(top, "opacity", 0.5)
    before = bg.pixels.copy()
    doc.merge_down(top)
    assert len(doc.layers) == 1
    assert tuple(bg.pixels[15, 15]) == (255, 128, 128, 255)
    assert tuple(bg.pixels[40, 40]) == (255, 255, 255, 255)
    doc.undo_stack.undo()
    assert np.array_equal(bg.pixels, before) and len(doc.layers) == 2


def test_selection_tools_modes_and_undo(qtbot, window):
    _new(window, 100, 100)
    doc, sel = window.doc, window.doc.selection
    window.tools.set_tool("rect")
    _drag(qtbot, window, [(10, 10), (50, 50)])
    assert sel.bounds == (10, 10, 40, 40)
    window.tool_objects["ellipse"].select([(40, 40), (90, 90)], "add")
    assert sel.mask[65, 65] == 255 and sel.mask[20, 20] == 255
    window.tool_objects["lasso"].select([(0, 0), (30, 0), (0, 30)], "subtract")
    assert sel.mask[12, 12] == 0 and sel.mask[40, 20] == 255
    window.invert_selection()
    assert sel.mask[12, 12] == 255 and sel.mask[40, 20] == 0
    window.feather_selection(3)
    assert 0 < sel.mask[10, 30] < 255 or 0 < sel.mask[30, 10] < 255
    window.deselect()
    assert sel.is_empty
    window.select_all()
    assert sel.bounds == (0, 0, 100, 100)
    for _ in range(7):
        doc.undo_stack.undo()
    assert sel.is_empty


def test_mask_brush_paints_the_selection(qtbot, window):
    _new(window, 100, 100)
    window.tools.set_tool("maskbrush")
    window.tools.set(size=10.0, hardness=1.0)
    _drag(qtbot, window, [(20, 20), (60, 20)])
    assert window.doc.selection.mask[20, 40] == 255
    assert window.doc.selection.mask[80, 80] == 0
    window.doc.undo_stack.undo()
    assert window.doc.selection.is_empty


def test_shortcuts(qtbot, window):
    _new(window, 64, 64)
    window.canvas.setFocus()
    QTest.keyClick(window, Qt.Key.Key_E)
    assert window.tools.tool == "eraser"
    QTest.keyClick(window, Qt.Key.Key_B)
    assert window.tools.tool == "brush"
    size = window.tools.size
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.tools.size > size
    QTest.keyClick(window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert not window.doc.selection.is_empty
    QTest.keyClick(
        window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert window.doc.selection.is_empty
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.doc.selection.is_empty
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.selection.is_empty


def test_window_screenshot_shows_the_painting(qtbot, window, tmp_path):
    _new(window, 256, 192)
    window.doc.add_layer()
    window.tools.set(size=40.0)
    window.tools.set_color(QColor(220, 30, 30))
    _drag(qtbot, window, [(40, 40), (200, 150)])
    window.canvas.fit()
    shot = window.grab()
    path = tmp_path / "window.png"
    assert shot.save(str(path))
    img = shot.toImage()
    reds = sum(
        1
        for x in range(0, img.width(), 8)
        for y in range(0, img.height(), 8)
        if QColor(img.pixel(x, y)).red() > 180 and QColor(img.pixel(x, y)).green() < 80
    )
    assert reds > 10
