"""Benchmark cases for the models people bring (docs/MODELS.md): TAESD previews and few-step samplers.

    noisebrush bench taesd-preview --quick   # one preview decode: TAESD vs the full SD VAE, 256 px, CPU
    noisebrush bench lcm-edit --quick        # a 4-step LCM edit vs a 30-step default edit, tiny SD stand-in

taesd-preview decodes the same x0 latent through TAESD's architecture (`AutoencoderTiny`, diffusers'
defaults) and through SD 1.x's VAE (`AutoencoderKL` in SD 1.5's shape), both with random weights: cost
depends on shape, not on the weights. lcm-edit times whole engine edits (encode, steps, decode) of the same
guide at strength 1, so the LCM run makes 4 UNet calls and the default (PNDM) run 31.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from noisebrush.bench.harness import Case, Options, Row, built_once, side_by_side
from noisebrush.core.engine.engine import Engine, pick_device
from noisebrush.core.engine.previews import TinyPreview
from noisebrush.core.engine.requests import SDEditRequest


def taesd_vs_vae(opt: Options) -> list[Row]:
    """Preview cost of one step: a TAESD decode against a full VAE decode of the same latent (SD 1.x)."""
    from diffusers import AutoencoderTiny

    from noisebrush.bench.standins import sd15_vae

    device, dtype = pick_device(opt.device)
    torch.manual_seed(0)
    vae = sd15_vae()
    vae = vae.to(device, dtype).eval()
    tiny = TinyPreview(AutoencoderTiny().to(device, dtype).eval(), path=None)  # type: ignore[arg-type]
    side = 32 if opt.quick else 64  # latents: 256 or 512 pixels
    z = torch.randn(1, 4, side, side, device=device, dtype=dtype)

    def full() -> None:
        with torch.no_grad():
            vae.decode(z / 0.18215, return_dict=False)

    def preview() -> None:
        tiny(z, 8)

    ours, peer, ratio = side_by_side(preview, full, opt.rounds(3, 10))
    return [
        Row(
            f"taesd-preview {side * 8}px",
            ours * 1000,
            peer * 1000,
            "ms",
            ratio,
            "<= 0.1",
            "TAESD decode vs the full SD VAE decode of one x0 latent (random weights, real shapes)",
        )
    ]


def lcm_vs_default(opt: Options) -> list[Row]:
    """A 4-step LCM edit against a 30-step default (PNDM) edit of the same guide, tiny SD stand-in."""
    from noisebrush.bench.standins import tiny_sd

    folder = built_once(opt.workdir / "sd-tiny", tiny_sd)
    size = 64 if opt.quick else 256
    rng = np.random.RandomState(0)
    guide = np.repeat(np.repeat((rng.rand(size // 8, size // 8, 3) * 255).astype(np.uint8), 8, 0), 8, 1)
    engine = Engine(memory_budget=0)
    # The same guidance on both sides (both run the unconditional half), so the ratio is the steps' alone.
    base: dict[str, Any] = dict(
        guide=guide, model=str(folder), strength=1.0, prompt="a red barn", guidance=1.5, seed=1
    )
    base["device"] = opt.device

    def lcm() -> None:
        engine.sdedit(SDEditRequest(**base, steps=4, sampler="lcm"))

    def default() -> None:
        engine.sdedit(SDEditRequest(**base, steps=30))

    ours, peer, ratio = side_by_side(lcm, default, opt.rounds(3, 7))
    return [
        Row(
            f"lcm-edit 4 vs 30 steps {size}px",
            ours,
            peer,
            "s",
            ratio,
            "<= 0.35",
            "whole edits at strength 1 (encode, steps, decode), guidance 1.5 on both sides",
        )
    ]


CASES: dict[str, Case] = {"taesd-preview": taesd_vs_vae, "lcm-edit": lcm_vs_default}
