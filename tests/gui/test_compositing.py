"""Compositing, SDEdit's third use: paste a patch, place it (move, transform), copy/cut, and blend it
in with a low-strength run, all through the real window offscreen."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from noisebrush.gui.clipboard import image_to_rgba, rgba_to_image
from noisebrush.gui.model.layer import Layer

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _wp(win, x: float, y: float) -> QPoint:
    return win.canvas.to_widget(QPointF(x, y)).toPoint()


def _drag(win, points: list[tuple[float, float]], mods=Qt.KeyboardModifier.NoModifier) -> None:
    canvas = win.canvas
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, mods, _wp(win, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, _wp(win, *p))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, mods, _wp(win, *points[-1]))


def _new(win, w: int = 256, h: int = 192) -> None:
    QApplication.processEvents()  # the window fits the view once after showing: let that pass first
    win.doc.new(w, h)
    win.canvas.set_scale(1.0)
    win.canvas.origin = QPointF(10, 10)


def _patch(w: int = 40, h: int = 30) -> np.ndarray:
    """An asymmetric opaque patch, so a flip or a turn shows in the pixels."""
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    return rgba


def _system_copy(rgba: np.ndarray) -> None:
    """What another program does: a plain image on the system clipboard."""
    board = QApplication.clipboard()
    assert board is not None
    board.setImage(rgba_to_image(rgba))


def _paste_at(qtbot, win, x: float, y: float) -> Layer:
    # Two moves: QTest drops a move to where it believes the pointer already is (a past test's spot).
    QTest.mouseMove(win.canvas, _wp(win, x + 1, y))
    QTest.mouseMove(win.canvas, _wp(win, x, y))
    n = len(win.doc.layers)
    QTest.keyClick(win, Qt.Key.Key_V, CTRL)
    qtbot.waitUntil(lambda: len(win.doc.layers) == n + 1)
    assert win.doc.active is not None
    return win.doc.active


def test_image_copied_elsewhere_pastes_as_new_layer_centred_under_the_pointer(qtbot, window):
    _new(window)
    patch = _patch()
    _system_copy(patch)
    steps = window.doc.undo_stack.count()
    layer = _paste_at(qtbot, window, 100, 80)
    assert window.doc.undo_stack.count() == steps + 1
    assert (layer.x, layer.y) == (100 - 20, 80 - 15)
    assert np.array_equal(layer.pixels, patch)
    # What the painter sees at the drop point is the patch's middle pixel.
    assert tuple(window.doc.composite((100, 80, 1, 1))[0, 0]) == tuple(patch[15, 20])
    window.doc.undo_stack.undo()
    assert layer not in window.doc.layers


def test_paste_with_the_pointer_off_the_canvas_goes_to_the_middle_of_the_view(qtbot, window):
    _new(window)
    _system_copy(_patch(20, 20))
    window.canvas.leaveEvent(None)
    window.actions_by_name["paste"].trigger()
    layer = window.doc.active
    cx, cy = window.canvas.drop_point()
    assert layer is not None and layer.name.startswith("Pasted")
    assert abs(layer.x + 10 - cx) <= 1 and abs(layer.y + 10 - cy) <= 1


def test_copy_takes_the_active_layer_inside_the_selection_and_cut_clears_it_in_one_step(qtbot, window):
    _new(window)
    layer = window.doc.layers[0]
    layer.pixels[...] = _patch(256, 192)
    window.tool_objects["rect"].select([(30, 40), (90, 80)], "replace")
    QTest.keyClick(window, Qt.Key.Key_C, CTRL)
    board = QApplication.clipboard()
    copied = image_to_rgba(board.image())
    assert np.array_equal(copied, layer.pixels[40:80, 30:90])
    before = layer.pixels.copy()
    steps = window.doc.undo_stack.count()
    QTest.keyClick(window, Qt.Key.Key_X, CTRL)
    assert window.doc.undo_stack.count() == steps + 1
    assert (layer.pixels[40:80, 30:90, 3] == 0).all()
    outside = np.ones(before.shape[:2], bool)
    outside[40:80, 30:90] = False
    assert np.array_equal(layer.pixels[outside], before[outside])
    window.doc.undo_stack.undo()
    assert np.array_equal(layer.pixels, before)
    # Paste in Place puts the copy back exactly where it came from.
    window.actions_by_name["paste_in_place"].trigger()
    pasted = window.doc.active
    assert pasted is not None and (pasted.x, pasted.y) == (30, 40)


def test_copy_merged_takes_what_is_visible(qtbot, window):
    _new(window)
    top = window.doc.add_layer("Red")
    top.pixels[:, :128] = (255, 0, 0, 255)
    window.tool_objects["rect"].select([(100, 10), (160, 20)], "replace")
    QTest.keyClick(window, Qt.Key.Key_C, CTRL | SHIFT)
    copied = image_to_rgba(QApplication.clipboard().image())
    assert copied.shape == (10, 60, 4)
    assert tuple(copied[0, 0]) == (255, 0, 0, 255) and tuple(copied[0, -1]) == (255, 255, 255, 255)


def test_move_tool_drags_the_layer_by_the_pointer_in_one_undo_step(qtbot, window):
    _new(window)
    _system_copy(_patch())
    layer = _paste_at(qtbot, window, 100, 80)
    start = (layer.x, layer.y)
    QTest.keyClick(window, Qt.Key.Key_V)
    assert window.tools.tool == "move"
    steps = window.doc.undo_stack.count()
    _drag(window, [(100, 80), (115, 90), (130, 100)])
    assert (layer.x, layer.y) == (start[0] + 30, start[1] + 20)
    assert window.doc.undo_stack.count() == steps + 1
    QTest.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert (layer.x, layer.y) == start


def _transform(qtbot, window, patch: np.ndarray | None = None) -> Layer:
    _new(window)
    _system_copy(_patch() if patch is None else patch)
    layer = _paste_at(qtbot, window, 100, 80)  # content (80, 65) .. (120, 95)
    QTest.keyClick(window, Qt.Key.Key_T, CTRL)
    assert window.tools.tool == "transform" and window.transform_tool.busy()
    return layer


def test_transform_corner_handle_scales_and_enter_applies_in_one_step(qtbot, window):
    blocks = np.repeat(np.repeat(_patch(10, 8)[:, :, :], 4, axis=0), 4, axis=1)[:30]  # 4x4 px blocks
    layer = _transform(qtbot, window, blocks)
    patch = layer.pixels.copy()
    steps = window.doc.undo_stack.count()
    # The bottom-right corner, dragged to twice its distance from the centre.
    _drag(window, [(120, 95), (130, 102), (140, 110)])
    assert layer.width == 80 and layer.height == 60  # the preview is in place while transforming
    assert window.doc.undo_stack.count() == steps
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert not window.transform_tool.busy()
    assert window.doc.undo_stack.count() == steps + 1
    assert (layer.x, layer.y, layer.width, layer.height) == (60, 50, 80, 60)
    # Twice as big: each 4x4 block is now 8x8, and the middle of each shows the block's colour.
    for by, bx in ((0, 0), (1, 1), (3, 7), (6, 9)):
        assert tuple(layer.pixels[by * 8 + 4, bx * 8 + 4]) == tuple(patch[by * 4 + 2, bx * 4 + 2])
    window.doc.undo_stack.undo()
    assert np.array_equal(layer.pixels, patch) and (layer.x, layer.y) == (80, 65)


def test_transform_flip_and_quarter_turn_give_exact_pixels_and_esc_cancels(qtbot, window):
    layer = _transform(qtbot, window)
    patch = layer.pixels.copy()
    window.brush_panel.flip_h.click()
    assert np.array_equal(layer.pixels, patch[:, ::-1])
    window.brush_panel.flip_h.click()
    # Rotate: drag outside the box, a quarter turn about the centre (100, 80), Shift snapping.
    _drag(window, [(160, 80), (150, 110), (100, 140)], SHIFT)
    QTest.keyClick(window.canvas, Qt.Key.Key_Enter)
    assert layer.pixels.shape[:2] == (40, 30)
    assert np.abs(layer.pixels.astype(int) - np.rot90(patch, -1).astype(int)).max() <= 1
    steps = window.doc.undo_stack.count()
    QTest.keyClick(window, Qt.Key.Key_T, CTRL)
    _drag(window, [(100, 80), (110, 80)])  # a move inside the box, then thrown away
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert window.doc.undo_stack.count() == steps
    assert np.abs(layer.pixels.astype(int) - np.rot90(patch, -1).astype(int)).max() <= 1


def test_undo_during_a_transform_throws_the_transform_away_first(qtbot, window):
    layer = _transform(qtbot, window)
    patch = layer.pixels.copy()
    _drag(window, [(100, 80), (140, 100)])
    assert layer.x != 80
    steps = window.doc.undo_stack.index()
    QTest.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert window.doc.undo_stack.index() == steps  # the paste is still there
    assert np.array_equal(layer.pixels, patch) and (layer.x, layer.y) == (80, 65)


def test_open_file_as_layer(qtbot, window, tmp_path):
    from PIL import Image

    _new(window)
    patch = _patch(24, 16)
    path = tmp_path / "patch.png"
    Image.fromarray(patch, "RGBA").save(path)
    window.canvas.leaveEvent(None)
    n = len(window.doc.layers)
    window.files.open_as_layer(str(path), window.clipboard.open_as_layer)
    qtbot.waitUntil(lambda: len(window.doc.layers) == n + 1, timeout=10000)
    layer = window.doc.active
    assert layer is not None and layer.name.startswith("patch")
    assert np.array_equal(layer.pixels, patch)
    assert len(window.doc.layers) == n + 1 and window.doc.layers[0].name == "Background"


def test_pasted_patch_blends_in_with_a_low_strength_run_over_a_selection_around_it(
    qtbot, window, fake_engine
):
    _new(window)
    _system_copy(_patch())
    layer = _paste_at(qtbot, window, 100, 80)
    window.tool_objects["ellipse"].select([(70, 55), (130, 105)], "replace")
    window.sdedit.set_options(strength=0.25, where="selection")
    n = len(window.doc.layers)
    assert window.sdedit_panel.generate.isEnabled()
    window.sdedit_panel.generate.click()
    qtbot.waitUntil(lambda: len(window.doc.layers) == n + 1, timeout=20000)
    req = fake_engine.calls[-1]
    assert req.strength == 0.25
    # The guide is what the painter sees (the patch over the background; the run's box is the
    # selection's grown by 64 px of context, from (6, 0)), and the mask covers the patch.
    assert np.array_equal(req.guide[80, 100 - 6, :3], layer.pixels[15, 20, :3])
    assert req.mask is not None and req.mask[80, 100 - 6] == 1.0
    result = window.doc.active
    assert result is not None and result is not layer
