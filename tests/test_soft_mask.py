"""Soft selections as differential diffusion (Levin and Fried 2023): a grey mask value is a per-pixel strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.engine import samplers
from noisebrush.core.engine.samplers import sdedit_ve, sdedit_vp, ve_sigmas

STEPS = 20


def denoise(x: torch.Tensor, t: object) -> torch.Tensor:
    """A fixed, cheap stand-in for a UNet: any deterministic function shows how the mask is applied."""
    return 0.3 * torch.tanh(x) - 0.05 * x.roll(1, -1)


def keep() -> torch.Tensor:
    return torch.linspace(-1, 1, 3 * 12 * 16).reshape(1, 3, 12, 16)


def run(kind: str, mask: torch.Tensor, strength: float, seed: int, seen: list | None = None) -> torch.Tensor:
    gens = [torch.Generator().manual_seed(seed)]
    cb = None if seen is None else (lambda s: seen.append(s.x.clone()))
    if kind == "vp":
        sched = DDPMScheduler(num_train_timesteps=1000)
        return sdedit_vp(denoise, keep(), sched, strength, STEPS, gens, 1, mask, cb)
    return sdedit_ve(denoise, keep(), ve_sigmas(0.01, 50.0, strength, STEPS), gens, 1, mask, cb)


@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(["vp", "ve"]),
    bits=st.lists(st.booleans(), min_size=12 * 16, max_size=12 * 16),
    strength=st.sampled_from([0.3, 0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_binary_mask_gives_todays_result_bit_for_bit(kind, bits, strength, seed):
    mask = torch.tensor(bits, dtype=torch.float32).reshape(1, 1, 12, 16)
    now = run(kind, mask, strength, seed)
    with pytest.MonkeyPatch.context() as mp:  # the blend the samplers made before soft selections
        mp.setattr(samplers, "changed", lambda m, i, n, x, kept: torch.lerp(kept, x, m))
        before = run(kind, mask, strength, seed)
    assert torch.equal(now, before)


@pytest.mark.parametrize("kind", ["vp", "ve"])
def test_grey_pixels_join_the_edit_late(kind):
    """m = 0.3 follows the re-noised guide for the first 70 % of the steps, then denoises: a per-pixel t0."""
    soft = torch.ones(1, 1, 12, 16)
    soft[..., :, :8] = 0.3
    kept = soft.clone()
    kept[..., :, :8] = 0.0  # the same run with those pixels kept throughout
    a: list[torch.Tensor] = []
    b: list[torch.Tensor] = []
    out_soft = run(kind, soft, 1.0, 7, a)
    out_kept = run(kind, kept, 1.0, 7, b)
    n = len(a)
    grey = (..., slice(None), slice(None, 8))
    joined = [i for i in range(n) if not torch.equal(a[i][grey], b[i][grey])]
    assert joined and joined[0] == int(np.ceil(0.7 * n)), "joins once 1 - i / n <= 0.3"
    full = run(kind, torch.ones(1, 1, 12, 16), 1.0, 7)
    moved_soft = (out_soft[grey] - keep()[grey]).abs().mean()
    moved_full = (full[grey] - keep()[grey]).abs().mean()
    assert not torch.equal(out_soft[grey], out_kept[grey]) and moved_soft < moved_full
