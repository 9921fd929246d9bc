"""Few-step samplers (LCM, trailing Euler): diffusers' img2img with the same scheduler, the same image; the
smallest step count that runs a step at a strength is accepted, one fewer is refused and says the smallest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.samplers import start_index
from noisebrush.core.engine.schedulers import FEW_STEPS, fewest_steps, scheduler_for
from noisebrush.core.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SAMPLERS = ["lcm", "euler-trailing"]


def _req(model, guide, **kw):
    base = dict(guide=guide, model=str(model), prompt="a red barn", seed=7, device="cpu", guidance=1.5)
    return SDEditRequest(**{**base, **kw})


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_few_step_sampler_matches_diffusers_img2img(engine, sd_model, sampler):
    from diffusers import StableDiffusionImg2ImgPipeline

    rng = np.random.RandomState(5)
    guide = (rng.rand(32, 32, 3) * 255).astype(np.uint8)
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
        sd_model, safety_checker=None, feature_extractor=None
    )
    pipe.set_progress_bar_config(disable=True)
    cls, config = scheduler_for(sampler, type(pipe.scheduler), dict(pipe.scheduler.config))
    pipe.scheduler = cls.from_config(config)
    ref = pipe(
        "a red barn",
        image=Image.fromarray(guide),
        strength=0.5,
        num_inference_steps=4,
        guidance_scale=1.5,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
    ).images[0]
    ours = engine.sdedit(_req(sd_model, guide, strength=0.5, steps=4, sampler=sampler))[0]
    diff = np.abs(ours.astype(np.float64) / 255 - ref.astype(np.float64))
    assert diff.max() <= 1 / 255 + 1e-6, f"max difference {diff.max() * 255:.3f}/255"


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_low_strength_runs_at_the_smallest_steps_and_is_refused_below(engine, sd_model, guide, sampler):
    strength = 0.2
    least = fewest_steps(strength)
    assert least == 5
    seen = []
    out = engine.sdedit(
        _req(sd_model, guide, strength=strength, steps=least, sampler=sampler), callback=seen.append
    )[0]
    assert len(seen) == 1 and seen[-1].total == 1  # one step, reported
    assert out.shape == guide.shape
    with pytest.raises(BadInput, match=f"runs no step.*at least {least} steps"):
        engine.sdedit(_req(sd_model, guide, strength=strength, steps=least - 1, sampler=sampler))


def test_few_step_sampler_leaves_the_model_scheduler_as_it_was(engine, sd_model, guide):
    before = engine.sdedit(_req(sd_model, guide, strength=0.5, steps=6))[0]
    engine.sdedit(_req(sd_model, guide, strength=0.5, steps=6, sampler="lcm"))
    assert np.array_equal(engine.sdedit(_req(sd_model, guide, strength=0.5, steps=6))[0], before)
    prior = engine.prior(str(sd_model), "cpu")
    assert type(prior.new_scheduler()).__name__ == "PNDMScheduler"


def test_few_step_sampler_defaults_to_its_own_steps(engine, sd_model, guide):
    seen = []
    engine.sdedit(_req(sd_model, guide, strength=0.5, sampler="lcm"), callback=seen.append)
    assert seen[-1].total == int(FEW_STEPS["lcm"] * 0.5)


def test_lcm_past_its_original_steps_is_refused(engine, sd_model, guide):
    with pytest.raises(BadInput, match="at most 50 steps"):
        engine.sdedit(_req(sd_model, guide, strength=0.5, steps=60, sampler="lcm"))


def test_few_step_sampler_on_a_ve_model_is_refused(engine, ve_model):
    g = np.full((32, 32, 3), 90, np.uint8)
    with pytest.raises(BadInput, match="needs a DDPM-type"):
        engine.sdedit(SDEditRequest(guide=g, model=str(ve_model), steps=4, device="cpu", sampler="lcm"))


def test_unknown_sampler_is_refused_at_the_edge(guide):
    with pytest.raises(BadInput, match="sampler must be one of default, lcm, euler-trailing"):
        SDEditRequest(guide=guide, sampler="dpm++").validate()


@given(strength=st.floats(0.001, 1.0), steps=st.integers(1, 2000))
@settings(max_examples=300, deadline=None, database=None)
def test_fewest_steps_is_the_smallest_that_runs_a_step(strength, steps):
    least = fewest_steps(strength)
    assert start_index(least, strength) < least  # runs at least one step
    assert least == 1 or start_index(least - 1, strength) == least - 1  # one fewer runs none
    runs = start_index(steps, strength) < steps
    assert runs == (steps >= least)
