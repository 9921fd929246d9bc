"""The GPU's half-precision path run on the CPU: float16 (and bfloat16) priors edit without dtype errors
between masks, latents, noise and the add-ons, and a VAE that asks for float32 (`force_upcast`, SDXL's) gets it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from noisebrush.bench import standins
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.loading import load_prior
from noisebrush.core.engine.requests import Concept, LeditsRequest, Lora, SDEditRequest
from noisebrush.core.engine.sources import resolve_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HALVES = [torch.float16, torch.bfloat16]


def _engine_at(model, dtype) -> Engine:
    """An engine whose CPU prior for `model` is loaded in `dtype`, as `pick_device` loads CUDA priors."""
    engine = Engine()
    prior = load_prior(resolve_model(str(model)), torch.device("cpu"), dtype)
    engine._priors[(str(resolve_model(str(model))), "cpu", torch.float32)] = prior
    return engine


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("fixture", ["sd_model", "sdxl_model", "ddpm_model"])
def test_half_precision_edit_runs_and_keeps_unselected_pixels(request, fixture, dtype, guide, box_mask):
    model = request.getfixturevalue(fixture)
    text = {"prompt": "a red barn"} if fixture != "ddpm_model" else {}
    req = SDEditRequest(
        guide=guide, mask=box_mask, model=str(model), strength=0.5, steps=6, device="cpu", feather=0, **text
    )
    previews = []
    half = _engine_at(model, dtype).sdedit(req, callback=lambda p: previews.append(p.preview()))[0]
    full = Engine().sdedit(req)[0]
    assert np.array_equal(half[box_mask == 0], guide[box_mask == 0])
    assert previews and all(p is not None for p in previews)
    # Random tiny weights amplify rounding, so only a loose closeness to the float32 edit is asked.
    assert np.abs(half.astype(int) - full).mean() < 12


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_half_precision_ledits_runs(sd_model, dtype, guide):
    req = LeditsRequest(
        image=guide, model=str(sd_model), steps=6, concepts=[Concept("barn", scale=3.0)], device="cpu"
    )
    out = _engine_at(sd_model, dtype).ledits(req)
    assert out.shape == guide.shape


def test_force_upcast_keeps_the_vae_in_float32_and_others_in_half(sdxl_model, tmp_path):
    prior = load_prior(sdxl_model, torch.device("cpu"), torch.float16)
    assert prior.vae.dtype == torch.float32 and prior.unet.dtype == torch.float16
    plain = shutil.copytree(sdxl_model, tmp_path / "plain")
    config = json.loads((plain / "vae" / "config.json").read_text())
    (plain / "vae" / "config.json").write_text(json.dumps({**config, "force_upcast": False}))
    assert load_prior(plain, torch.device("cpu"), torch.float16).vae.dtype == torch.float16


def test_half_precision_with_every_add_on(sd_model, guide, tmp_path, monkeypatch):
    """A LoRA, LCM, a ControlNet and TAESD previews together in float16."""
    models = tmp_path / "models"
    standins.tiny_taesd(models / "taesd")
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    lora = standins.tiny_lora(tmp_path / "l.safetensors", sd_model)
    net = standins.tiny_controlnet(tmp_path / "cn", sd_model)
    engine = _engine_at(sd_model, torch.float16)
    from noisebrush.core.engine import previews

    previews.attach(engine.prior(str(sd_model), "cpu"))
    shown = []
    req = SDEditRequest(
        guide=guide, model=str(sd_model), strength=0.5, steps=4, sampler="lcm", prompt="a barn", device="cpu",
        loras=[Lora(str(lora), 0.8)], controlnet=str(net),
    )  # fmt: skip
    out = engine.sdedit(req, callback=lambda p: shown.append(p.preview()))[0]
    assert out.shape == guide.shape and len(shown) == 2
