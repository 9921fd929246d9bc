"""Brush strokes on big layers: fast paths that must not change what gets painted."""

from __future__ import annotations

import numpy as np

from noisebrush.gui.model.layer import Layer, lazy_zeros
from noisebrush.gui.model.pixels import composite_premultiplied
from noisebrush.gui.model.stroke import BrushDab, Stroke


def _near_segment(
    shape: tuple[int, int], a: tuple[float, float], b: tuple[float, float], r: float
) -> np.ndarray:
    """Pixels whose centre lies within `r` of the segment a-b."""
    ys, xs = np.mgrid[: shape[0], : shape[1]] + 0.5
    (ax, ay), (bx, by) = a, b
    t = np.clip(((xs - ax) * (bx - ax) + (ys - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1)
    return np.hypot(xs - ax - t * (bx - ax), ys - ay - t * (by - ay)) <= r


def _stroke(target: np.ndarray, a: tuple[float, float], b: tuple[float, float], radius: float = 4.0):
    s = Stroke(target, "paint", (250, 20, 20, 255), hardness=1.0)
    s.line_to(BrushDab(a[0], a[1], radius, 1.0))
    s.line_to(BrushDab(b[0], b[1], radius, 1.0))  # one pointer move: many dabs, one recompute
    return s.finish()


def test_one_long_move_changes_only_the_pixels_under_its_dabs():
    rng = np.random.default_rng(5)
    target = rng.integers(0, 256, (600, 640, 4), dtype=np.uint8)
    before = target.copy()
    # A diagonal move crosses tiles that no single dab touches inside the dabs' joint bounding box.
    box, old, new = _stroke(target, (20, 30), (610, 570))
    changed = (target != before).any(axis=2)
    assert changed.any()
    assert not (changed & ~_near_segment(target.shape[:2], (20, 30), (610, 570), 4 + 1.5)).any()
    x, y, w, h = box
    assert np.array_equal(old, before[y : y + h, x : x + w]) and np.array_equal(
        new, target[y : y + h, x : x + w]
    )


def test_a_second_stroke_starts_clean():
    target = np.zeros((300, 400, 4), np.uint8)
    _stroke(target, (30, 30), (370, 40))
    first = target.copy()
    box, old, _ = _stroke(target, (30, 250), (370, 260))
    # The work arrays are reused from the first stroke: its coverage must not show up again.
    changed = (target != first).any(axis=2)
    assert not (changed & ~_near_segment(target.shape[:2], (30, 250), (370, 260), 5.5)).any()
    x, y, w, h = box
    assert np.array_equal(old, first[y : y + h, x : x + w])


def test_lazy_zeros_are_zeros_and_writable():
    a = lazy_zeros((1024, 1024, 4))
    assert a.shape == (1024, 1024, 4) and a.dtype == np.uint8 and not a.any()
    a[5, 7] = 3
    assert a.sum() == 12
    assert lazy_zeros((3, 3), np.float32).dtype == np.float32


def test_composite_matches_a_plain_per_pixel_over():
    rng = np.random.default_rng(8)
    layers = [
        Layer("a", rng.integers(0, 256, (50, 60, 4), dtype=np.uint8)),
        Layer("b", rng.integers(0, 256, (30, 20, 4), dtype=np.uint8), 10, -5, 0.6),
        Layer("c", rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), 30, 20, 0.3),
        Layer("hidden", rng.integers(0, 256, (50, 60, 4), dtype=np.uint8), 0, 0, 1.0, False),
    ]
    box = (-4, -3, 70, 58)
    want = np.zeros((58, 70, 4))
    for la in layers:
        if not la.visible:
            continue
        for j in range(la.height):
            for i in range(la.width):
                y, x = la.y + j - box[1], la.x + i - box[0]
                if 0 <= y < 58 and 0 <= x < 70:
                    a = la.pixels[j, i, 3] / 255 * la.opacity
                    want[y, x, :3] = want[y, x, :3] * (1 - a) + la.pixels[j, i, :3] / 255 * a
                    want[y, x, 3] = want[y, x, 3] * (1 - a) + a
    got = composite_premultiplied(layers, box)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-5
