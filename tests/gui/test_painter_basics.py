"""Colour dock, foreground/background keys, docks at a small window size, and the other painter habits."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, QPointF, QRect, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication


def _new(win, w: int = 128, h: int = 96) -> None:
    QApplication.processEvents()
    win.doc.new(w, h)
    win.canvas.set_scale(1.0)
    win.canvas.origin = QPointF(10, 10)


def _visible_in_window(win, widget) -> bool:
    """The widget is shown and its whole rectangle lies inside the window and inside every parent."""
    if not widget.isVisible():
        return False
    rect = QRect(widget.mapTo(win, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not win:
        clip = QRect(parent.mapTo(win, QPoint(0, 0)), parent.size())
        if not clip.contains(rect):
            return False
        parent = parent.parentWidget()
    return win.rect().contains(rect)


def test_generate_button_stays_visible_in_a_1000_by_650_window(qtbot, window):
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.size().width() == 1000 and window.size().height() == 650)
    QApplication.processEvents()
    assert _visible_in_window(window, window.sdedit_panel.generate)
    assert _visible_in_window(window, window.sdedit_panel.cancel)
    # The layers list keeps some room too.
    assert window.layers_panel.view.height() >= 60
    window.generate_tabs.setCurrentIndex(1)
    QApplication.processEvents()
    run = next(
        b for b in window.ledits_panel.findChildren(type(window.sdedit_panel.generate)) if b.isVisible()
    )
    assert _visible_in_window(window, run)


def test_x_swaps_and_d_resets_the_colours_and_the_dock_follows(qtbot, window):
    window.tools.set_color(QColor("#3a7bd5"))
    window.tools.set_background(QColor("#ffcc00"))
    window.canvas.setFocus()
    QTest.keyClick(window, Qt.Key.Key_X)
    assert window.tools.color.name() == "#ffcc00" and window.tools.background.name() == "#3a7bd5"
    assert window.colour_panel.hex.text() == "#ffcc00"
    QTest.keyClick(window, Qt.Key.Key_D)
    assert window.tools.color.name() == "#000000" and window.tools.background.name() == "#ffffff"


def test_hex_entry_and_the_hsv_square_set_the_brush_colour(qtbot, window):
    panel = window.colour_panel
    panel.hex.setFocus()
    panel.hex.selectAll()
    QTest.keyClicks(panel.hex, "#20a040")
    QTest.keyClick(panel.hex, Qt.Key.Key_Return)
    assert window.tools.color.name() == "#20a040"
    # A bad entry is refused with the colour left as it was.
    panel.hex.setText("#zz")
    panel.hex.editingFinished.emit()
    assert window.tools.color.name() == "#20a040" and panel.hex.text() == "#20a040"
    # Top-right corner of the square: full saturation and value of the current hue.
    sq = panel.square
    QTest.mouseClick(sq, Qt.MouseButton.LeftButton, pos=QPoint(sq.width() - 1, 0))
    h, s, v, _ = window.tools.color.getHsvF()
    assert s > 0.98 and v > 0.98 and abs(h - QColor("#20a040").hsvHueF()) < 0.01


def test_eyedropper_feeds_the_colour_dock(qtbot, window):
    _new(window)
    window.doc.layers[0].pixels[:, :] = (10, 200, 90, 255)
    window.doc.touched(window.doc.layers[0], None)
    QTest.keyClick(window, Qt.Key.Key_I)
    pos = window.canvas.to_widget(QPointF(50, 50)).toPoint()
    QTest.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=pos)
    assert window.tools.color.name() == QColor(10, 200, 90).name()
    assert window.colour_panel.hex.text() == QColor(10, 200, 90).name()


def test_paint_with_the_picked_colour(qtbot, window):
    _new(window)
    layer = window.doc.add_layer()
    window.colour_panel.hex.setText("#ff0000")
    window.colour_panel.hex.editingFinished.emit()
    window.tools.set_tool("brush")
    window.tools.set(size=10.0, hardness=1.0, opacity=1.0, pressure=False)
    canvas = window.canvas
    a, b = (canvas.to_widget(QPointF(x, 30)).toPoint() for x in (20, 60))
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(canvas, b)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    assert tuple(layer.pixels[30, 40]) == (255, 0, 0, 255)
    assert np.count_nonzero(layer.pixels[..., 3]) > 0


def _centre_line_deviation(alpha: np.ndarray, y: float, x0: int, x1: int) -> float:
    """Mean distance of each column's painted centre from row `y`, over columns x0..x1."""
    rows = np.arange(alpha.shape[0], dtype=np.float64)[:, None]
    cols = alpha[:, x0:x1].astype(np.float64)
    weight = cols.sum(axis=0)
    assert (weight > 0).all(), "the stroke left a gap"
    centre = (rows * cols).sum(axis=0) / weight
    return float(np.abs(centre - y).mean())


def _jittered_stroke(window, layer_name: str, smoothing: float) -> np.ndarray:
    layer = window.doc.add_layer(layer_name)
    window.tools.set_tool("brush")
    window.tools.set(size=6.0, hardness=1.0, opacity=1.0, pressure=False, smoothing=smoothing)
    canvas = window.canvas
    rng = np.random.default_rng(11)
    xs = np.arange(10, 231, 3)
    ys = 60 + rng.uniform(-9, 9, xs.size)
    ys[0] = 60  # the painter puts the pen down on the line, then the hand shakes
    pts = [canvas.to_widget(QPointF(float(x), float(y))).toPoint() for x, y in zip(xs, ys, strict=True)]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(canvas, p)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])
    return layer.pixels[..., 3].copy()


def test_smoothing_steadies_a_shaky_line(qtbot, window):
    _new(window, 256, 128)
    # Columns 40..160: past the start, and short of where the trailing smoothed stroke ends.
    raw = _centre_line_deviation(_jittered_stroke(window, "raw", 0.0), 60, 40, 160)
    steady = _centre_line_deviation(_jittered_stroke(window, "steady", 0.8), 60, 40, 160)
    assert raw > 2.5  # the hand really shook
    assert steady < 0.5 * raw


def test_brush_presets_from_the_tool_options(qtbot, window):
    panel = window.brush_panel
    i = panel.preset.findData("Soft airbrush")
    panel.preset.setCurrentIndex(i)
    panel.preset.activated.emit(i)
    assert window.tools.hardness == 0.0 and window.tools.opacity < 0.5 and window.tools.size >= 60
    assert panel.hardness.value() == 0 and panel.preset.currentText() == "Soft airbrush"
    i = panel.preset.findData("Hard ink")
    panel.preset.activated.emit(i)
    assert window.tools.hardness == 1.0 and window.tools.size <= 8 and window.tools.smoothing > 0
    assert panel.smoothing.value() == round(window.tools.smoothing * 100)


def test_new_image_is_one_dialog_with_width_height_and_presets(qtbot, window):
    from noisebrush.gui.new_image import NewImageDialog

    window.actions_by_name["new"].trigger()
    dialog = window.findChild(NewImageDialog)
    assert dialog is not None and dialog.isVisible()
    i = dialog.preset.findData("512x512")
    dialog.preset.setCurrentIndex(i)
    assert dialog.image_size() == (512, 512)
    dialog.height_box.setValue(300)
    assert dialog.preset.currentText() == "Custom"
    dialog.accept()
    assert (window.doc.width, window.doc.height) == (512, 300)


def test_status_says_the_model_loads_only_when_it_does(qtbot, window):
    _new(window)
    bar = window.statusBar()
    window.sdedit_panel.generate.click()
    assert "loading the model" in bar.currentMessage()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)
    window.sdedit_panel.generate.click()
    assert bar.currentMessage().startswith("Generating") and "loading" not in bar.currentMessage()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)


def test_batch_progress_names_the_layer_and_the_step(qtbot, window, fake_engine):
    _new(window)
    layers = [window.doc.add_layer(f"L{i}") for i in range(3)]
    for la in layers:
        la.pixels[10:20, 10:20] = (200, 10, 10, 255)
    window.doc.set_active(layers[-1], {la.uid for la in layers})
    window.sdedit.set_options(where="layers")
    fake_engine.steps, fake_engine.step_s = 20, 0.02
    seen: set[str] = set()
    window.step_label.setText("")
    window.sdedit_panel.generate.click()

    def second_layer_shown() -> bool:
        seen.add(window.step_label.text())
        return any(t.startswith("layer 2 of 3, step ") for t in seen)

    qtbot.waitUntil(second_layer_shown, timeout=20000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)
