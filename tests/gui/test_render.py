"""The canvas' tile cache: patched tiles equal freshly built ones at every level of detail."""

from __future__ import annotations

import numpy as np
import pytest

from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import composite_premultiplied, intersect, to_rgba8_premultiplied
from noisebrush.gui.render import TileCache


@pytest.mark.parametrize("shown_level", [None, 0, 1])
def test_patch_matches_a_fresh_build(qtbot, shown_level):
    rng = np.random.default_rng(1)
    layers = [
        Layer("bg", np.full((700, 900, 4), 255, np.uint8)),
        Layer("p", rng.integers(0, 256, (300, 400, 4), dtype=np.uint8), 37, 51, 0.7),
    ]
    doc = (0, 0, 900, 700)

    def build(box, step):
        inner = intersect(box, doc)
        return None if inner is None else to_rgba8_premultiplied(composite_premultiplied(layers, inner, step))

    cache = TileCache(build)
    keys = [(lv, tx, ty) for lv in (0, 1, 2) for tx in range(4) for ty in range(3)]
    for k in keys:
        cache.get(*k)
    layers[1].pixels[100:140, 200:260] = (10, 200, 30, 255)
    cache.patch((37 + 200, 51 + 100, 60, 40), shown_level)
    builds = cache.builds
    fresh = TileCache(build)
    for k in keys:
        a, b = cache.get(*k), fresh.get(*k)
        assert (a is None) == (b is None)
        if a is not None:
            assert a == b, k
    # Tiles of the level on screen were patched in place; those of other levels were rebuilt.
    rebuilt = cache.builds - builds
    assert rebuilt == {None: 0, 0: 2, 1: 3}[shown_level]  # the box spans 2 tiles at level 0, 1 above
