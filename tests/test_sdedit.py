"""SDEdit properties a user relies on: masks lose nothing, strength 0 is identity, progress and cancel work."""

from __future__ import annotations

import numpy as np
import pytest

from noisebrush.core.engine.masks import feather, work_box
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput, Cancelled


def req(model, guide, **kw) -> SDEditRequest:
    kw.setdefault("steps", 10)
    kw.setdefault("device", "cpu")
    return SDEditRequest(guide=guide, model=str(model), **kw)


def test_strength_zero_returns_input_exactly(engine, ddpm_model, guide):
    rgba = np.dstack([guide, np.full(guide.shape[:2], 77, np.uint8)])
    out = engine.sdedit(req(ddpm_model, rgba, strength=0.0, variations=2))
    assert len(out) == 2 and all(np.array_equal(o, rgba) for o in out)


def test_soft_mask_blends_and_zero_stays_exact(engine, ddpm_model, guide):
    m = np.zeros(guide.shape[:2], np.float32)
    m[5:35, 5:50] = np.linspace(0, 1, 45, dtype=np.float32)[None, :]
    out = engine.sdedit(req(ddpm_model, guide, mask=m, strength=0.6, feather=0))[0]
    assert np.array_equal(out[m == 0], guide[m == 0])
    change = np.abs(out.astype(int) - guide).sum(-1)
    weak, strong = change[5:35, 6:15].mean(), change[5:35, 40:50].mean()
    assert strong > weak, "pixels with a higher mask value must move further from the guide"


def test_rgba_guide_keeps_alpha_outside_and_becomes_opaque_inside(engine, ddpm_model, guide, box_mask):
    rgba = np.dstack([guide, np.full(guide.shape[:2], 100, np.uint8)])
    out = engine.sdedit(req(ddpm_model, rgba, mask=box_mask, feather=0))[0]
    assert out.shape == rgba.shape
    assert np.array_equal(out[box_mask == 0], rgba[box_mask == 0])
    assert (out[box_mask == 1][:, 3] == 255).all()


def test_odd_sizes_keep_their_aspect(engine, ddpm_model):
    g = (np.random.RandomState(1).rand(37, 61, 3) * 255).astype(np.uint8)
    out = engine.sdedit(req(ddpm_model, g, strength=0.3))[0]
    assert out.shape == g.shape


def test_variations_differ_and_first_matches_single_run(engine, ddpm_model, guide, box_mask):
    many = engine.sdedit(req(ddpm_model, guide, mask=box_mask, variations=3, seed=4))
    one = engine.sdedit(req(ddpm_model, guide, mask=box_mask, seed=4))[0]
    second = engine.sdedit(req(ddpm_model, guide, mask=box_mask, seed=5))[0]
    assert len(many) == 3
    assert np.array_equal(many[0], one) and np.array_equal(many[1], second), "variation i uses seed + i"
    assert not np.array_equal(many[0], many[2])


def test_repeats_run_k_times(engine, ddpm_model, guide):
    seen = []
    engine.sdedit(
        req(ddpm_model, guide, strength=0.5, repeats=3, work_size=0),
        callback=lambda p: seen.append((p.step, p.total)),
    )
    assert seen[-1] == (15, 15) and len(seen) == 15


def test_progress_reports_every_step_with_preview_of_the_box(engine, sd_model, guide, box_mask):
    seen = []

    def cb(p):
        img = p.preview()
        seen.append((p.step, p.total, p.box, img.shape, img.dtype))

    engine.sdedit(req(sd_model, guide, mask=box_mask, strength=0.5, context=4), callback=cb)
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1)) and seen[-1][1] == len(seen) >= 5
    x, y, w, h = seen[0][2]
    assert seen[0][3] == (h, w, 3) and seen[0][4] == np.uint8
    assert w < guide.shape[1] or h < guide.shape[0], "a small selection is processed as a crop"


def test_cancel_from_callback_stops_the_run(engine, ddpm_model, guide):
    calls = []

    def cb(p):
        calls.append(p.step)
        if p.step == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.sdedit(req(ddpm_model, guide, strength=0.8), callback=cb)
    assert calls == [1, 2]


def test_crop_follows_the_selection():
    m = np.zeros((2048, 2048), np.float32)
    m[1000:1256, 500:756] = 1
    box = work_box(m, m.shape, context=32, multiple=8)
    assert box.w == 320 and box.h == 320 and box.w % 8 == 0
    assert box.x <= 500 - 32 and box.x + box.w >= 756 + 32


def test_feather_is_inward_only():
    m = np.zeros((64, 64), np.float32)
    m[16:48, 16:48] = 1
    f = feather(m, 6)
    assert (f[m == 0] == 0).all(), "feathering must never reach outside the selection"
    assert f[32, 32] == 1.0 and 0 < f[16, 32] < 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"strength": 1.5}, "strength must be in [0, 1]"),
        ({"strength": -0.1}, "strength must be in [0, 1]"),
        ({"device": "tpu"}, "unknown device"),
        ({"steps": 0}, "steps must be between"),
        ({"mask": np.ones((10, 10), np.float32)}, "must be the same size"),
        ({"variations": 0}, "variations must be"),
    ],
)
def test_bad_requests_say_what_is_allowed(engine, ddpm_model, guide, change, message):
    with pytest.raises(BadInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        engine.sdedit(req(ddpm_model, guide, **change))


def test_text_on_a_model_without_text_is_refused(engine, ddpm_model, guide):
    with pytest.raises(BadInput, match="takes no text"):
        engine.sdedit(req(ddpm_model, guide, prompt="a castle"))


def test_cuda_without_a_gpu_is_a_clear_error(engine, ddpm_model, guide):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BadInput, match="no CUDA device"):
        engine.sdedit(req(ddpm_model, guide, device="cuda"))


@pytest.mark.gpu
def test_cuda_half_precision_runs(engine, sd_model, guide, box_mask):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    out = engine.sdedit(req(sd_model, guide, mask=box_mask, device="cuda", prompt="a barn"))[0]
    assert np.array_equal(out[box_mask == 0], guide[box_mask == 0])
