"""Canvas-size SDEdit: a region well above the prior's native size is composed there and refined at full size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisebrush.core.engine.masks import feather, model_mask, pad_to_multiple, paste
from noisebrush.core.engine.plan import WELL_ABOVE, live_run, native_size, stages
from noisebrush.core.engine.priors import Conditioning, to_uint8
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.samplers import sdedit_vp
from noisebrush.core.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NATIVE = 32  # the tiny test DDPM's unet sample_size; the 40x56 guide is 1.75x that, so it is planned


def req(model, guide, **kw) -> SDEditRequest:
    kw.setdefault("steps", 10)
    kw.setdefault("device", "cpu")
    return SDEditRequest(guide=guide, model=str(model), **kw)


def sizes_seen(engine, model, run):
    """(h, w) of every denoiser call `run()` makes, and its Progress reports."""
    prior = engine.prior(str(model), "cpu")
    seen: list[tuple[int, int]] = []
    handle = prior.unet.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    reports = []
    try:
        out = run(reports.append)
    finally:
        handle.remove()
    return seen, reports, out


def today(engine, model, guide, mask, strength, steps, seed, feather_px=8):
    """Single-stage masked SDEdit as the engine ran it before the plan: the oracle for `work_size=0`."""
    prior = engine.prior(str(model), "cpu")
    gen = [torch.Generator("cpu").manual_seed(seed)]
    pixels = torch.from_numpy(guide.copy()).permute(2, 0, 1)[None].float().div_(127.5).sub_(1.0)
    pixels, (h, w) = pad_to_multiple(pixels, prior.multiple)
    space = model_mask(mask, tuple(pixels.shape[-2:]), 1)
    with torch.inference_mode():
        x = sdedit_vp(
            lambda x, t: prior.predict(x, t, Conditioning()),
            pixels,
            prior.new_scheduler(),
            strength,
            steps,
            gen,
            1,
            space,
        )
    img = to_uint8(x)[0][:h, :w]
    out = guide.copy()
    paste(out, img, feather(mask, feather_px))
    return out


def test_native_size_comes_from_the_prior(ddpm_model, sd_model, sdxl_model):
    assert native_size(ddpm_model, {}) == NATIVE  # a pixel DDPM's unet sample_size
    assert native_size(sd_model, {}) == 512
    assert native_size(sdxl_model, {}) == 1024
    assert native_size(ddpm_model, {"work_size": 64}) == 64  # noisebrush.json wins
    from noisebrush.core.engine.sources import model_settings, resolve_model

    # The bundled prior composes at 128 px, the size of its training crops (docs/eval-canvas.md says why).
    assert native_size(resolve_model("default"), model_settings(resolve_model("default"))) == 128


def test_region_well_above_native_is_composed_small_then_refined_full(engine, ddpm_model, guide, box_mask):
    seen, reports, out = sizes_seen(
        engine, ddpm_model, lambda cb: engine.sdedit(req(ddpm_model, guide, strength=0.5), callback=cb)
    )
    # stage 1 at the native scale: 56 -> 32 wide, 40 -> 23 (padded to 24) high; 5 steps at t0 = 0.5
    # stage 2 at full size at the prior's refine strength 0.3: 3 steps
    assert seen == [(24, 32)] * 5 + [(40, 56)] * 3
    assert [p.stage for p in reports] == ["compose"] * 5 + ["refine"] * 3
    assert [(p.step, p.total) for p in reports] == [(i, 8) for i in range(1, 9)]
    assert out[0].shape == guide.shape
    assert reports[0].preview().shape == guide.shape  # a composition preview is shown at the box's size


def test_a_priors_refine_steps_bound_the_refine_stage_schedule(engine, ddpm_model, guide, tmp_path):
    """`refine_steps` in noisebrush.json: the refine stage runs on a schedule of at most that many steps (the
    compose stage keeps the request's), and a request asking for fewer keeps its own."""
    import json
    import shutil

    model = tmp_path / "coarse-refine"
    shutil.copytree(ddpm_model, model)
    (model / "noisebrush.json").write_text(json.dumps({"refine_steps": 4, "refine_strength": 0.5}))
    for steps, refine_calls in ((20, 2), (10, 2), (2, 1)):
        seen, reports, _ = sizes_seen(
            engine,
            model,
            lambda cb, s=steps: engine.sdedit(req(model, guide, strength=0.5, steps=s), callback=cb),
        )
        compose = [x for x in seen if x == (24, 32)]
        assert len(compose) == steps // 2 and seen[len(compose) :] == [(40, 56)] * refine_calls, (steps, seen)
        assert reports[-1].total == len(seen)  # progress counts what runs


def test_the_bundled_prior_refines_256_px_in_three_full_size_calls():
    from noisebrush.core.engine.plan import native_size
    from noisebrush.core.engine.sources import model_settings, resolve_model

    settings_ = model_settings(resolve_model("default"))
    plan = stages((256, 256), 0.5, native_size(resolve_model("default"), settings_), None, None, settings_)
    assert [(s.name, s.size, s.steps(30)) for s in plan] == [
        ("compose", (128, 128), 30),
        ("refine", (256, 256), 15),
    ]


def test_refine_strength_zero_returns_the_upscaled_composition(engine, ddpm_model, guide):
    seen, reports, out = sizes_seen(
        engine,
        ddpm_model,
        lambda cb: engine.sdedit(req(ddpm_model, guide, refine_strength=0.0), callback=cb),
    )
    assert seen == [(24, 32)] * 5 and {p.stage for p in reports} == {"compose"}
    assert out[0].shape == guide.shape


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    top=st.integers(0, 20),
    left=st.integers(0, 30),
    refine=st.sampled_from([None, 0.0, 0.5]),
)
def test_unedited_pixels_stay_bit_identical_in_both_stages(engine, ddpm_model, guide, top, left, refine):
    rgba = np.dstack([guide, np.full(guide.shape[:2], 90, np.uint8)])
    m = np.zeros(guide.shape[:2], np.float32)
    m[top : top + 18, left : left + 24] = 1.0
    m[top + 2 : top + 6, left + 2 : left + 12] = 0.4  # a soft part too
    out = engine.sdedit(req(ddpm_model, rgba, mask=m, strength=0.7, refine_strength=refine))[0]
    assert np.array_equal(out[m == 0], rgba[m == 0])
    assert not np.array_equal(out[m == 1], rgba[m == 1])


def test_work_size_zero_is_todays_single_stage_byte_for_byte(engine, ddpm_model, guide, box_mask):
    seen, _, out = sizes_seen(
        engine,
        ddpm_model,
        lambda cb: engine.sdedit(
            req(ddpm_model, guide, mask=box_mask, strength=0.6, seed=3, work_size=0), callback=cb
        ),
    )
    assert set(seen) == {(40, 56)} and len(seen) == 6
    assert np.array_equal(out[0], today(engine, ddpm_model, guide, box_mask, 0.6, 10, 3))


def test_region_at_native_size_runs_one_stage_as_today(engine, ddpm_model, guide, box_mask):
    small, mask = guide[:32, :40].copy(), box_mask[:32, :40].copy()  # 40 <= 1.5 x 32: no plan
    seen, reports, out = sizes_seen(
        engine,
        ddpm_model,
        lambda cb: engine.sdedit(req(ddpm_model, small, mask=mask, strength=0.6, seed=3), callback=cb),
    )
    assert set(seen) == {(32, 40)} and {p.stage for p in reports} == {"denoise"}
    assert np.array_equal(out[0], today(engine, ddpm_model, small, mask, 0.6, 10, 3))


def test_a_selection_plans_by_its_box_not_the_canvas(engine, ddpm_model):
    canvas = np.full((120, 160, 3), 128, np.uint8)
    m = np.zeros((120, 160), np.float32)
    m[50:70, 60:80] = 1.0  # a 20 px selection with 8 px of context: 36 px, below 1.5 x 32
    seen, _, _ = sizes_seen(
        engine, ddpm_model, lambda cb: engine.sdedit(req(ddpm_model, canvas, mask=m, context=8), callback=cb)
    )
    assert set(seen) == {(36, 36)}


@given(
    h=st.integers(8, 4096),
    w=st.integers(8, 4096),
    native=st.sampled_from([64, 512, 1024]),
)
def test_plan_sizes_keep_the_aspect_and_the_native_scale(h, w, native):
    plan = stages((h, w), 0.5, native, None, None, {})
    if max(h, w) <= WELL_ABOVE * native:
        assert [s.name for s in plan] == ["denoise"] and plan[0].size == (h, w)
        return
    compose, refine = plan
    assert max(compose.size) == native and compose.strength == 0.5
    scale = native / max(h, w)
    assert abs(compose.size[0] - max(8, h * scale)) <= 0.5 and abs(compose.size[1] - max(8, w * scale)) <= 0.5
    assert refine.size == (h, w) and refine.strength == 0.3


def test_bad_plan_fields_say_what_is_allowed(guide):
    with pytest.raises(BadInput, match="work size must be 0"):
        SDEditRequest(guide=guide, work_size=3).validate()
    with pytest.raises(BadInput, match=r"refine strength must be in \[0, 1\]"):
        SDEditRequest(guide=guide, refine_strength=1.5).validate()


def test_budget_skips_refine_that_does_not_fit_and_says_so(engine, ddpm_model, guide, monkeypatch):
    from noisebrush.core.engine import budget

    monkeypatch.setattr(budget, "refine_fits", lambda r, b: False)
    seen, reports, out = sizes_seen(
        engine, ddpm_model, lambda cb: engine.sdedit(req(ddpm_model, guide), callback=cb)
    )
    assert seen == [(24, 32)] * 5
    assert reports[-1].stage.startswith("refine skipped")
    assert out[0].shape == guide.shape


def test_budget_estimates_the_plan_it_runs(ddpm_model):
    from noisebrush.core.engine import budget
    from noisebrush.core.engine.budget import footprint, sdedit_needs

    g = np.zeros((2048, 2048, 3), np.uint8)
    fp = footprint(ddpm_model, {})
    compose, refine = sdedit_needs(SDEditRequest(guide=g, model=str(ddpm_model)), fp, ddpm_model, {})
    single, none = sdedit_needs(
        SDEditRequest(guide=g, model=str(ddpm_model), work_size=0), fp, ddpm_model, {}
    )
    assert none is None and refine == single > compose  # the refine stage at full size is the peak
    _, no_refine = sdedit_needs(
        SDEditRequest(guide=g, model=str(ddpm_model), refine_strength=0.0), fp, ddpm_model, {}
    )
    assert no_refine is None
    between = (compose + single) // 2  # the composition fits, the refine stage does not
    r = SDEditRequest(guide=g, model=str(ddpm_model), device="cpu")
    budget.check(r, between)  # not refused
    assert not budget.refine_fits(r, between)
    with pytest.raises(BadInput, match="memory budget"):
        budget.check(SDEditRequest(guide=g, model=str(ddpm_model), device="cpu", work_size=0), between)


def test_a_live_draft_runs_at_the_priors_scale_on_its_live_schedule_unless_steps_are_set():
    guide = np.zeros((256, 256, 3), np.uint8)
    plain = SDEditRequest(guide=guide, model="default")
    assert live_run(plain) is plain  # not asked for: the request as it is
    bundled = live_run(SDEditRequest(guide=guide, model="default", live=True))
    assert (bundled.work_size, bundled.steps, bundled.refine_strength) == (64, 15, 0.0)
    assert live_run(SDEditRequest(guide=guide, model="default", steps=40, live=True)).steps == 40
    unknown = live_run(SDEditRequest(guide=guide, model="no-such-model", live=True))
    assert unknown.refine_strength == 0.0 and unknown.steps is None  # the engine says what is wrong


def test_the_engine_runs_a_live_draft_as_its_plan_says_from_any_surface():
    """The Studio and the Krita docker (through the server) send `live`; the engine plans it: one composing
    stage at 64 px, upscaled, exactly the run the planned request makes, and cheaper than the full plan."""
    from dataclasses import replace

    from noisebrush.bench.canvas import lake_guide
    from noisebrush.core.engine.engine import Engine

    engine = Engine()
    req = SDEditRequest(guide=lake_guide(256, 256), model="default", strength=0.5, live=True)
    seen: list[tuple[str, int]] = []
    draft = engine.sdedit(req, callback=lambda p: seen.append((p.stage, p.total)))[0]
    planned = replace(req, live=False, work_size=64, steps=15, refine_strength=0.0)
    seen_planned: list[tuple[str, int]] = []
    assert np.array_equal(
        draft, engine.sdedit(planned, callback=lambda p: seen_planned.append((p.stage, p.total)))[0]
    )
    assert seen == seen_planned and {stage for stage, _ in seen} == {"compose"}
    assert seen[-1][1] < 15  # fewer model calls than the 30-step schedule's 15 at t0 0.5
    assert draft.shape == (256, 256, 3)
