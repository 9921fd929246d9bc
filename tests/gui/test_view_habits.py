"""The canvas view: no seams between tiles, wheel habits, paint during a run shown over the preview."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QWheelEvent
from PyQt6.QtWidgets import QApplication

from noisebrush.gui.clipboard import image_to_rgba


def _grab(canvas) -> np.ndarray:
    return image_to_rgba(canvas.grab().toImage())


@pytest.mark.parametrize(("scale", "ox", "oy"), [(0.37, 10.3, 7.7), (1.7, -300.45, -200.2), (0.61, 3.5, 2.5)])
def test_no_line_shows_at_tile_seams(qtbot, window, scale, ox, oy):
    QApplication.processEvents()
    window.doc.new(1400, 1100)
    window.doc.layers[0].pixels[...] = (40, 120, 200, 255)
    window.doc.touched(window.doc.layers[0], None)
    canvas = window.canvas
    canvas.scale, canvas.origin = scale, QPointF(ox, oy)
    canvas.update()
    shot = _grab(canvas)
    # Every screen pixel well inside the document shows the document's one colour.
    tl = canvas.to_widget(QPointF(0, 0))
    br = canvas.to_widget(QPointF(1400, 1100))
    x0, y0 = max(0, int(tl.x()) + 2), max(0, int(tl.y()) + 2)
    x1, y1 = min(shot.shape[1], int(br.x()) - 2), min(shot.shape[0], int(br.y()) - 2)
    inside = shot[y0:y1, x0:x1, :3].astype(int)
    assert inside.size > 0
    off = np.abs(inside - (40, 120, 200)).max(axis=2) > 2
    assert not off.any(), f"{int(off.sum())} pixels off colour, e.g. at {np.argwhere(off)[:3] + (y0, x0)}"


def _wheel(canvas, dy: int, mods=Qt.KeyboardModifier.NoModifier) -> None:
    pos = QPointF(canvas.width() / 2, canvas.height() / 2)
    ev = QWheelEvent(
        pos,
        canvas.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, dy),
        Qt.MouseButton.NoButton,
        mods,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, ev)


def test_wheel_scrolls_and_ctrl_wheel_zooms_with_a_setting_for_the_other_habit(qtbot, window):
    canvas = window.canvas
    scale, origin = canvas.scale, QPointF(canvas.origin)
    _wheel(canvas, -120)
    assert canvas.scale == scale and canvas.origin.y() < origin.y()  # scrolled down the page
    _wheel(canvas, 120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale > scale
    window.actions_by_name["wheel_zooms"].trigger()
    assert window.settings.value("view/wheel_zooms") in (True, "true")
    scale = canvas.scale
    _wheel(canvas, 120)
    assert canvas.scale > scale


def test_paint_made_during_a_run_shows_over_the_preview(qtbot, window, fake_engine):
    QApplication.processEvents()
    window.doc.new(200, 150)
    window.canvas.set_scale(1.0)
    window.canvas.origin = QPointF(10, 10)
    window.doc.layers[0].pixels[...] = (100, 100, 100, 255)
    layer = window.doc.add_layer("Paint")
    window.tool_objects["rect"].select([(0, 0), (200, 150)], "replace")
    fake_engine.steps, fake_engine.step_s = 400, 0.02  # a run long enough to paint during it
    window.sdedit_panel.generate.click()
    qtbot.waitUntil(lambda: window.canvas.preview is not None, timeout=10000)
    # The preview (grey 100 inverted to about 150) covers the page; paint a red square during the run.
    layer.pixels[40:60, 40:60] = (255, 0, 0, 255)
    window.doc.touched(layer, (40, 40, 20, 20))
    shot = _grab(window.canvas)
    red = shot[10 + 50, 10 + 50]
    elsewhere = shot[10 + 100, 10 + 120]
    window.sdedit.cancel()
    qtbot.waitUntil(lambda: not window.sdedit.running, timeout=20000)
    assert tuple(red[:3]) == (255, 0, 0)
    assert min(elsewhere[:3]) > 130  # the preview still shows where nothing was painted
