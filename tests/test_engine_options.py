"""Engine speed and memory options: the low-memory path and the opt-in compiled UNet change nothing a user sees."""

from __future__ import annotations

import numpy as np
import pytest

from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest


def _req(model, guide, mask=None, **kw) -> SDEditRequest:
    return SDEditRequest(
        guide=guide,
        mask=mask,
        model=str(model),
        strength=0.6,
        steps=8,
        prompt="a barn",
        seed=1,
        device="cpu",
        **kw,
    )


def test_low_memory_keeps_unselected_pixels_and_switches_back(engine, sd_model, guide, box_mask):
    """Sliced attention and a tiled VAE: still exact outside the mask, close inside; off again restores all."""
    before = engine.sdedit(_req(sd_model, guide, box_mask))[0]
    low = engine.sdedit(_req(sd_model, guide, box_mask, low_memory=True))[0]
    after = engine.sdedit(_req(sd_model, guide, box_mask))[0]
    outside = box_mask == 0
    assert np.array_equal(low[outside], guide[outside])
    assert np.array_equal(before, after), "turning low_memory off must restore the normal path exactly"
    # the tiny VAE's tile is 32 px, so this 40x56 guide is decoded in blended tiles: close, not identical
    assert np.abs(low.astype(int) - before).mean() < 12


def test_sliced_attention_alone_is_the_same_computation(sd_model, guide):
    """Below the VAE's tile size only the attention is sliced, which is the same arithmetic in pieces."""
    engine = Engine()
    small = np.ascontiguousarray(guide[:32, :32])
    normal = engine.sdedit(_req(sd_model, small))[0]
    low = engine.sdedit(_req(sd_model, small, low_memory=True))[0]
    assert np.abs(normal.astype(int) - low).max() <= 1


@pytest.mark.slow
def test_compiled_unet_gives_the_same_image(sd_model, guide):
    pytest.importorskip("torch._inductor")
    plain = Engine().sdedit(_req(sd_model, guide))[0]
    compiled = Engine(compile=True).sdedit(_req(sd_model, guide))[0]
    assert np.abs(plain.astype(int) - compiled).max() <= 1


def test_vocabulary_is_read_without_loading_the_prior(sd_model) -> None:
    """The app asks for the concept words at start-up; that must not cost a model load."""
    fresh = Engine()
    assert fresh.vocabulary("default") == list(fresh.prior("default", "cpu").vocabulary or [])
    fresh = Engine()
    assert fresh.vocabulary("default") and fresh.vocabulary(str(sd_model)) is None
    assert not fresh._priors, "no prior may be loaded to answer vocabulary()"


def test_guidance_rescale_pulls_the_spread_back_to_the_conditional_one() -> None:
    import torch

    from noisebrush.core.engine.priors import rescale_guidance

    g = torch.Generator().manual_seed(0)
    uncond, text = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g) * 0.5
    guided = uncond + 7.5 * (text - uncond)
    assert torch.equal(rescale_guidance(guided, text, 0.0), guided)
    full = rescale_guidance(guided, text, 1.0)
    assert torch.allclose(full.std(dim=(1, 2, 3)), text.std(dim=(1, 2, 3)), rtol=1e-5)
    half = rescale_guidance(guided, text, 0.5)
    assert torch.allclose(half, (guided + full) / 2, atol=1e-5)


def test_a_model_opts_in_to_guidance_rescale_in_its_settings(sd_model, guide, tmp_path) -> None:
    import json
    import shutil

    rescaled = tmp_path / "sd-rescaled"
    shutil.copytree(sd_model, rescaled)
    settings = rescaled / "noisebrush.json"
    data = json.loads(settings.read_text()) if settings.exists() else {}
    settings.write_text(json.dumps({**data, "guidance_rescale": 0.7}))
    engine = Engine()
    assert engine.prior(str(rescaled), "cpu").condition("a barn", "", 7.5, 1, (32, 32)).rescale == 0.7
    assert engine.prior(str(sd_model), "cpu").condition("a barn", "", 7.5, 1, (32, 32)).rescale == 0.0
    plain = engine.sdedit(_req(sd_model, guide))[0]
    opted = engine.sdedit(_req(rescaled, guide))[0]
    assert not np.array_equal(plain, opted)


def _with_settings(model, folder, **settings) -> str:
    import json
    import shutil

    copy = folder / model.name
    shutil.copytree(model, copy)
    path = copy / "noisebrush.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**data, **settings}))
    return str(copy)


def test_guidance_interval_guides_only_inside_it_and_runs_the_prompt_alone_outside(
    sd_model, guide, tmp_path
) -> None:
    """Kynkaanniemi et al. 2024: outside the interval the output is the prompt's prediction, from one half
    of the batch; inside it, plain classifier-free guidance."""
    everywhere = _with_settings(sd_model, tmp_path / "everywhere", guidance_interval=[0.0, 1.0])
    low = _with_settings(sd_model, tmp_path / "low", guidance_interval=[0.0, 0.4])
    engine = Engine()
    steps: list[tuple[float, int]] = []
    prior = engine.prior(low, "cpu")
    handle = prior.unet.register_forward_pre_hook(
        lambda _m, args: steps.append((float(args[1].max()), args[0].shape[0]))
    )
    try:
        limited = engine.sdedit(_req(low, guide))[0]
    finally:
        handle.remove()
    assert steps and all(rows == (2 if t <= 400 else 1) for t, rows in steps)
    assert {rows for _, rows in steps} == {1, 2}
    plain = engine.sdedit(_req(sd_model, guide))[0]
    assert np.array_equal(engine.sdedit(_req(everywhere, guide))[0], plain)
    assert not np.array_equal(limited, plain)
    unguided = engine.sdedit(_req(sd_model, guide, guidance=1.0))[0]
    assert not np.array_equal(limited, unguided)


@pytest.mark.parametrize("interval", [[0.5, 0.2], [0.0, 1.5], [-0.1, 0.5]])
def test_a_bad_guidance_interval_names_what_is_allowed(sd_model, guide, tmp_path, interval) -> None:
    from noisebrush.core.errors import BadInput

    model = _with_settings(sd_model, tmp_path, guidance_interval=interval)
    with pytest.raises(BadInput, match=r"guidance_interval must be \[lo, hi\] with 0 <= lo < hi <= 1"):
        Engine().sdedit(_req(model, guide))


def test_steps_beyond_the_models_schedule_are_refused_before_it_loads() -> None:
    """The CLI and the app get the server's rule: no more steps than the schedule has timesteps (1000 for
    the bundled prior), refused with the bound before seconds of weight loading, not deep in the sampler."""
    from noisebrush.core.errors import BadInput

    engine = Engine()
    with pytest.raises(BadInput, match="at most 1000, the timesteps of model 'default'"):
        engine.sdedit(SDEditRequest(guide=np.zeros((16, 16, 3), np.uint8), steps=1001))
    assert not engine._priors  # nothing was loaded
