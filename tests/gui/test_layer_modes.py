"""Layer blend modes (drawn, chosen in the Layers panel, kept in .ora) and alpha lock."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.ora import read_ora, write_ora
from noisebrush.gui.model.pixels import BLEND_MODES, composite


def _new(win, w: int = 128, h: int = 96) -> None:
    QApplication.processEvents()
    win.doc.new(w, h)
    win.canvas.set_scale(1.0)
    win.canvas.origin = QPointF(10, 10)


def _choose_blend(panel, op: str) -> None:
    """What a click in the Blend list does: pick the row, which reports `activated`."""
    i = panel.blend.findData(op)
    assert i >= 0, op
    panel.blend.setCurrentIndex(i)
    panel.blend.activated.emit(i)


# PIL's ImageChops is an independent implementation of these modes on opaque images.
CHOPS = {
    "svg:multiply": ImageChops.multiply,
    "svg:screen": ImageChops.screen,
    "svg:darken": ImageChops.darker,
    "svg:lighten": ImageChops.lighter,
    "svg:difference": ImageChops.difference,
    "svg:overlay": ImageChops.overlay,
    "svg:hard-light": ImageChops.hard_light,
}


@pytest.mark.parametrize("op", sorted(CHOPS))
def test_opaque_blend_modes_match_an_independent_implementation(op):
    rng = np.random.default_rng(3)
    below = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    above = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    below[..., 3] = above[..., 3] = 255
    ours = composite([Layer("b", below), Layer("t", above, blend=op)], (0, 0, 16, 16))
    theirs = CHOPS[op](Image.fromarray(below[..., :3]), Image.fromarray(above[..., :3]))
    assert np.abs(ours[..., :3].astype(int) - np.asarray(theirs).astype(int)).max() <= 1
    assert (ours[..., 3] == 255).all()


def test_blend_mode_chosen_in_the_layers_panel_changes_what_the_canvas_shows_in_one_step(qtbot, window):
    _new(window)
    window.doc.layers[0].pixels[...] = (200, 100, 50, 255)
    top = window.doc.add_layer("Shade")
    top.pixels[...] = (128, 128, 128, 255)
    steps = window.doc.undo_stack.count()
    _choose_blend(window.layers_panel, "svg:multiply")
    assert top.blend == "svg:multiply"
    assert window.doc.undo_stack.count() == steps + 1
    assert tuple(window.doc.composite((5, 5, 1, 1))[0, 0]) == (100, 50, 25, 255)
    # The screen shows it too: the canvas tile under (5, 5) is rebuilt with the mode.
    shot = window.canvas.grab().toImage()
    c = QColor(shot.pixel(window.canvas.to_widget(QPointF(5.5, 5.5)).toPoint()))
    assert abs(c.red() - 100) <= 2 and abs(c.green() - 50) <= 2
    window.doc.undo_stack.undo()
    assert top.blend == "svg:src-over"
    assert tuple(window.doc.composite((5, 5, 1, 1))[0, 0]) == (128, 128, 128, 255)


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(sorted(BLEND_MODES)), alpha=st.integers(0, 255), opacity=st.floats(0, 1))
def test_blend_modes_round_trip_through_ora_and_look_the_same(tmp_path_factory, op, alpha, opacity):
    folder = tmp_path_factory.mktemp("ora")
    rng = np.random.default_rng(alpha)
    below = Layer("below", rng.integers(0, 256, (12, 12, 4), dtype=np.uint8))
    top_px = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    top_px[..., 3] = alpha
    top = Layer("top", top_px, 2, 3, round(opacity, 4), blend=op)
    path = folder / "modes.ora"
    write_ora(path, 12, 12, [below, top])
    with zipfile.ZipFile(path) as z:
        assert f'composite-op="{op}"'.encode() in z.read("stack.xml")
    _, _, layers = read_ora(path)
    assert [la.blend for la in layers] == ["svg:src-over", op]
    box = (0, 0, 12, 12)
    assert np.array_equal(composite(layers, box), composite([below, top], box))


def test_a_mode_we_do_not_draw_is_kept_and_named(tmp_path, qtbot, window):
    layer = Layer("k", np.zeros((4, 4, 4), np.uint8), blend="krita:linear-burn")
    path = tmp_path / "foreign.ora"
    write_ora(path, 4, 4, [Layer("bg", np.full((4, 4, 4), 255, np.uint8)), layer])
    _, _, layers = read_ora(path)
    assert layers[1].blend == "krita:linear-burn"
    window.doc.load(4, 4, layers, str(path))
    assert "krita:linear-burn (shown as Normal)" == window.layers_panel.blend.currentText()


def test_alpha_lock_paints_colour_but_keeps_the_transparency(qtbot, window):
    _new(window)
    layer = window.doc.add_layer("Patch")
    layer.pixels[20:60, 20:60] = (0, 0, 255, 255)
    layer.pixels[20:60, 40:60, 3] = 100  # half of it half transparent
    alpha_before = layer.pixels[..., 3].copy()
    window.layers_panel.buttons["alpha"].click()
    assert layer.alpha_locked
    window.tools.set_tool("brush")
    window.tools.set(size=30.0, hardness=1.0, opacity=1.0, pressure=False)
    window.tools.set_color(QColor(255, 0, 0))
    canvas = window.canvas
    pts = [canvas.to_widget(QPointF(x, 40)).toPoint() for x in (5, 50, 100)]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    QTest.mouseMove(canvas, pts[1])
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[2])
    assert np.array_equal(layer.pixels[..., 3], alpha_before)
    assert tuple(layer.pixels[40, 30]) == (255, 0, 0, 255)
    assert tuple(layer.pixels[40, 50]) == (255, 0, 0, 100)
    assert tuple(layer.pixels[40, 90, 3:]) == (0,)  # nothing appeared where the layer was empty


def test_saved_ora_gets_the_usual_file_mode(qtbot, window, tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "shared.ora"
        assert window.files.save_to(str(path))
        qtbot.waitUntil(lambda: path.exists() and not window.files.busy, timeout=20000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
