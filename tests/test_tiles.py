"""MultiDiffusion tiles: a region too big for the memory budget is denoised in overlapping windows whose
predictions are averaged at every step; no seam, unedited pixels untouched, one window equals no tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.engine import budget
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.tiles import OVERLAP, average, starts, tiled, windows
from tests.conftest import needs_bundled

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@settings(max_examples=300, deadline=None)
@given(
    multiple=st.sampled_from([1, 2, 4, 8]),
    cells=st.integers(1, 300),
    tile_cells=st.integers(2, 64),
)
def test_windows_cover_the_axis_and_overlap_their_neighbours(multiple, cells, tile_cells):
    length, tile = cells * multiple, tile_cells * multiple
    spots = starts(length, tile, multiple)
    side = min(tile, length)
    covered = np.zeros(length, int)
    for s in spots:
        assert 0 <= s and s + side <= length
        assert s % multiple == 0  # every window sees the same cell grid
        covered[s : s + side] += 1
    assert covered.min() >= 1
    for a, b in zip(spots, spots[1:], strict=False):
        assert a < b and a + side - b >= min(OVERLAP * side, side - multiple) - multiple  # a shared band


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), tile=st.integers(2, 16), value=st.floats(-3, 3))
def test_the_overlap_average_of_a_constant_image_is_that_constant(h, w, tile, value):
    x = torch.full((1, 3, 2 * h, 2 * w), value)
    out = average(lambda x, t: x.clone(), x, 0, windows((2 * h, 2 * w), 2 * tile, 2))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_a_pointwise_denoiser_gives_the_same_prediction_in_tiles():
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    whole = 2.0 * x - 1.0
    out = tiled(lambda x, t: 2.0 * x - 1.0, (64, 96), 32, 8)(x, 0)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)


def test_every_window_is_the_tile_and_all_are_denoised(engine, ddpm_model):
    seen: list[tuple[int, int]] = []
    x = torch.zeros(1, 3, 40, 56)
    tiled(lambda x, t: seen.append(tuple(x.shape[-2:])) or x, (40, 56), 16, 2)(x, 0)
    assert len(seen) == len(windows((40, 56), 16, 2)) > 1
    assert set(seen) == {(16, 16)}


def run(model, guide, mask=None, tile=0, **kw) -> np.ndarray:
    req = SDEditRequest(guide=guide, mask=mask, model=str(model), device="cpu", steps=10, work_size=0, **kw)
    return Engine(memory_budget=0, tile=tile).sdedit(req)[0]


@pytest.mark.parametrize("model", ["ddpm_model", "sd_model"])
def test_one_window_over_the_region_equals_no_tiles_byte_for_byte(request, model, guide):
    path = request.getfixturevalue(model)
    assert np.array_equal(run(path, guide, tile=64), run(path, guide))


@pytest.mark.parametrize("model", ["ddpm_model", "sd_model"])
def test_unedited_pixels_stay_bit_identical_with_masks_and_tiles(request, model, guide, box_mask):
    path = request.getfixturevalue(model)
    tile = 16 if model == "ddpm_model" else 32  # the tiny SD's multiple is 16 pixels
    out = run(path, guide, box_mask, tile=tile, strength=0.8)
    untouched = box_mask == 0
    assert np.array_equal(out[untouched], guide[untouched])
    assert not np.array_equal(out[box_mask == 1], guide[box_mask == 1])  # the selection did change


def test_tiles_stay_close_to_the_untiled_run(ddpm_model, guide):
    # The windows see less context, so the result differs, but it is the same picture, not a patchwork.
    whole = run(ddpm_model, guide, strength=0.5).astype(float)
    tiles = run(ddpm_model, guide, tile=24, strength=0.5).astype(float)
    assert np.abs(whole - tiles).mean() < 0.25 * np.abs(whole - guide).mean() + 4


@needs_bundled
def test_a_2048_full_edit_fits_2_gb_in_tiles_where_whole_it_would_not():
    guide = np.broadcast_to(np.uint8(128), (2048, 2048, 3))
    req = SDEditRequest(guide=guide, device="cpu")
    limit = budget.parse_size("2G")
    from noisebrush.core.engine.sources import model_settings, resolve_model

    path = resolve_model("default")
    fp = budget.footprint(path, model_settings(path))
    assert fp.peak(2048, 2048, 1) > limit  # untiled it would be refused
    budget.check(req, limit)  # tiled it is not
    tile = budget.tile_side(req, limit)
    assert fp.smallest_tile() <= tile < 2048 and tile % fp.multiple == 0
    assert fp.peak(2048, 2048, 1, tile=tile) <= limit < fp.peak(2048, 2048, 1, tile=tile + fp.multiple)
    assert budget.tile_side(SDEditRequest(guide=guide[:256, :256], device="cpu"), limit) == 0
