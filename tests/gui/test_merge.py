"""Merge down shows what the two layers showed: compared with the canvas renderer's own composite."""

from __future__ import annotations

import numpy as np
import pytest

from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import composite_premultiplied, to_rgba8_premultiplied

W, H = 48, 40


def _random(h: int, w: int, seed: int, opaque: bool = False) -> np.ndarray:
    px = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    if opaque:
        px[..., 3] = 255
    else:
        px[::3, ::2, 3] = 0  # fully transparent pixels, whose colour must not leak
        px[1::4, 1::3, 3] = 255
    return px


def _shown(window) -> np.ndarray:
    """What the canvas paints for the whole document: its tile builder, premultiplied RGBA8."""
    return window.canvas._build_composite(window.doc.rect, 1).astype(int)


def _state(doc) -> list[tuple]:
    return [(la.uid, la.rect, la.opacity, la.visible, la.pixels.copy()) for la in doc.layers]


def _same_state(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        x[:4] == y[:4] and np.array_equal(x[4], y[4]) for x, y in zip(a, b, strict=True)
    )


CASES = {
    # name: (lower, upper, most a pixel may differ by: 0 where the result is opaque, else 8-bit rounding)
    "opaque lower, translucent upper off the canvas edge": (
        dict(pixels=_random(H, W, 1, opaque=True), x=0, y=0, opacity=1.0, visible=True),
        dict(pixels=_random(30, 25, 2), x=-7, y=20, opacity=0.6, visible=True),
        0,
    ),
    "both translucent, both offset": (
        dict(pixels=_random(30, 40, 3), x=5, y=3, opacity=0.5, visible=True),
        dict(pixels=_random(25, 30, 4), x=20, y=-6, opacity=0.7, visible=True),
        1,
    ),
    "upper hidden": (
        dict(pixels=_random(30, 40, 5), x=5, y=3, opacity=0.5, visible=True),
        dict(pixels=_random(25, 30, 6), x=20, y=-6, opacity=0.7, visible=False),
        0,
    ),
    "lower hidden": (
        dict(pixels=_random(30, 40, 7), x=5, y=3, opacity=0.5, visible=False),
        dict(pixels=_random(25, 30, 8), x=20, y=-6, opacity=0.7, visible=True),
        1,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_merged_layer_shows_what_the_two_layers_showed_and_undoes(qtbot, window, case):
    lower_kw, upper_kw, tolerance = CASES[case]
    doc = window.doc
    lower, upper = Layer("lower", **lower_kw), Layer("upper", **upper_kw)
    doc.load(W, H, [lower, upper], None)
    before, state = _shown(window), _state(doc)
    assert doc.merge_down(upper)
    assert doc.layers == [lower] and doc.active is lower
    after = _shown(window)
    assert np.abs(after - before).max() <= tolerance, case
    if tolerance == 0:
        assert np.array_equal(after, before)
    merged = lower.pixels.copy()
    doc.undo_stack.undo()
    assert _same_state(_state(doc), state)  # one undo step puts both layers back exactly
    assert np.array_equal(_shown(window), before)
    doc.undo_stack.redo()
    assert doc.layers == [lower] and np.array_equal(lower.pixels, merged)


def test_merge_keeps_the_upper_layers_pixels_outside_the_canvas(qtbot, window):
    doc = window.doc
    lower = Layer("lower", np.full((H, W, 4), 255, np.uint8))
    upper = Layer("upper", np.full((10, 10, 4), (200, 10, 10, 255), np.uint8), -4, -3, 0.6)
    doc.load(W, H, [lower, upper], None)
    doc.merge_down(upper)
    assert lower.rect == (-4, -3, W + 4, H + 3)
    assert tuple(lower.pixels[0, 0]) == (200, 10, 10, 153)  # off the canvas: the upper layer alone
    assert tuple(lower.pixels[5, 5]) == (222, 108, 108, 255)  # on it: red at 60% over white


def test_two_hidden_layers_merge_as_if_shown_and_stay_hidden(qtbot, window):
    doc = window.doc
    white = Layer("bg", np.full((H, W, 4), 255, np.uint8))
    lower = Layer("lower", _random(30, 40, 9), 5, 3, 0.5, False)
    upper = Layer("upper", _random(25, 30, 10), 20, -6, 0.7, False)
    doc.load(W, H, [white, lower, upper], None)
    nothing_shown = _shown(window)
    # What the canvas would paint with both shown, from the renderer's own compositing.
    as_if_shown = [
        white,
        Layer("a", lower.pixels.copy(), 5, 3, 0.5),
        Layer("b", upper.pixels.copy(), 20, -6, 0.7),
    ]
    expected = to_rgba8_premultiplied(composite_premultiplied(as_if_shown, doc.rect)).astype(int)
    doc.merge_down(upper)
    assert not lower.visible and np.array_equal(_shown(window), nothing_shown)
    doc.set_layer_property(lower, "visible", True)
    assert np.abs(_shown(window) - expected).max() <= 1  # the merged pair is translucent: 8-bit rounding


def test_merge_in_the_middle_of_the_stack_leaves_the_picture_as_it_was(qtbot, window):
    doc = window.doc
    layers = [
        Layer("bg", _random(H, W, 11, opaque=True)),
        Layer("lower", _random(30, 40, 12), 5, 3, 0.8),
        Layer("upper", _random(25, 30, 13), 20, -6, 0.4),
        Layer("above", _random(20, 20, 14), 10, 10, 0.9),
    ]
    doc.load(W, H, layers, None)
    before = _shown(window)
    doc.merge_down(layers[2])
    assert [la.name for la in doc.layers] == ["bg", "lower", "above"]
    assert np.abs(_shown(window) - before).max() <= 1  # the merged pair is translucent: 8-bit rounding


def test_merge_onto_a_locked_layer_is_refused_with_a_reason(qtbot, window):
    doc = window.doc
    doc.new(32, 32)
    doc.set_layer_property(doc.layers[0], "locked", True)
    top = doc.add_layer("top")
    count = doc.undo_stack.count()
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    window.actions_by_name["layer_merge"].trigger()
    assert len(doc.layers) == 2 and doc.undo_stack.count() == count
    assert any("locked" in m for m in messages)
    assert not window.layers_panel.buttons["merge"].isEnabled()
    assert doc.active is top
