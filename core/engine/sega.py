"""Semantic guidance (SEGA, Brack et al. 2023, arXiv 2301.12247) over an edit-friendly inversion (LEDITS).

Per step and concept c (paper eqs. 6-8): psi_c = +/- s_c (eps(x, c) - eps(x, "")), kept only where |psi_c|
reaches its lambda-quantile (per channel over H x W); warm-up delta_c steps without it; momentum
gamma = sum_c psi_c + s_m nu, nu <- beta_m nu + (1 - beta_m) gamma (eq. 9), built up during warm-up too.
The final prediction is eps_uncond [+ s_g (eps_target - eps_uncond)] + gamma (LEDITS, Tsaban & Passos 2023).

Leading steps in which no concept is evaluated (all in warm-up without momentum, or no concept at all) and whose
prediction is the inversion's own (no target prompt, or the source prompt with its guidance) retrace the inverted
trajectory: x after them is x_t drawn from q(x_t | x_0) with the inversion's noise (eq. 6 of the edit-friendly
paper, which the inversion lands on by construction). Regeneration jumps there and makes no model call for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from noisebrush.core.engine.inversion import Inversion, eps_and_x0, regenerate_step
from noisebrush.core.engine.requests import Concept
from noisebrush.core.engine.samplers import Step, StepCallback

# denoise(x, t, rows) -> model outputs for one x under the listed conditions, in one batched call; the
# conditions are numbered [uncond, target (if any), concept 1, ..., concept K].
BatchDenoise = Callable[[torch.Tensor, Any, list[int]], torch.Tensor]

THRESHOLD_OVER = ("channel", "pixel")


def quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    """torch.quantile(x, q, dim=-1) with linear interpolation, by selection: no size limit, O(n) per row."""
    n = x.shape[-1]
    rank = q * (n - 1)
    lo = int(rank)
    hi = min(lo + 1, n - 1)
    x = x.float()
    a = torch.kthvalue(x, lo + 1, dim=-1).values
    if hi == lo:
        return a
    b = torch.kthvalue(x, hi + 1, dim=-1).values
    return torch.lerp(a, b, rank - lo)


def threshold(psi: torch.Tensor, q: float, over: str = "channel") -> torch.Tensor:
    """Keep the elements of psi whose magnitude reaches the q-quantile over H x W (SEGA eq. 7).

    `over="channel"`: each channel has its own quantile (SEGA's paper and its diffusers pipeline).
    `over="pixel"`: one mask for all channels from the channel-summed magnitude (diffusers' LEDITS++).
    """
    mag = psi.abs()
    if over == "pixel":
        mag = mag.sum(dim=1, keepdim=True).expand_as(psi)
    cut = quantile(mag.flatten(2), q).to(mag.dtype)[..., None, None]
    return torch.where(mag >= cut, psi, torch.zeros_like(psi))


def sega_guidance(
    eps_uncond: torch.Tensor,
    eps_concepts: Sequence[torch.Tensor],
    concepts: Sequence[Concept],
    step: int,
    nu: torch.Tensor | None,
    momentum: float = 0.0,
    beta: float = 0.0,
    mask: torch.Tensor | None = None,
    over: str = "channel",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SEGA's guidance term gamma for one step (eqs. 6-9); returns (what to add to eps, new momentum nu).

    `step` is 0-based. A concept in warm-up adds nothing but still feeds the momentum; the momentum itself is
    added once every concept is past its warm-up. `mask` (1 = may change) confines psi before thresholding.
    """
    total = torch.zeros_like(eps_uncond)
    active = torch.zeros_like(eps_uncond)
    for eps_c, c in zip(eps_concepts, concepts, strict=True):
        psi = (eps_c - eps_uncond) * c.signed_scale
        if mask is not None:
            psi = psi * mask
        psi = threshold(psi, c.threshold, over)
        total = total + psi
        if step >= c.warmup:
            active = active + psi
    if momentum == 0.0:
        return active, None
    if nu is None:
        nu = torch.zeros_like(total)
    gamma = total + momentum * nu
    nu = beta * nu + (1.0 - beta) * gamma
    if all(step >= c.warmup for c in concepts):
        return gamma, nu
    return active, nu


def live_concepts(concepts: Sequence[Concept], step: int, momentum: float) -> list[int]:
    """The concepts evaluated at `step`: without momentum a concept in warm-up contributes nothing."""
    return [c for c, concept in enumerate(concepts) if momentum != 0.0 or step >= concept.warmup]


def retraced_steps(n: int, concepts: Sequence[Concept], momentum: float, matches_inversion: bool) -> int:
    """How many leading steps reproduce the inverted trajectory exactly, so regeneration can jump over them.

    `matches_inversion`: the unguided prediction is the one the inversion used (no target and no source
    prompt, or the target prompt and its guidance equal the source's).
    """
    if not matches_inversion:
        return 0
    return next((i for i in range(n) if live_concepts(concepts, i, momentum)), n)


def sega(
    denoise: BatchDenoise,
    inv: Inversion,
    concepts: Sequence[Concept],
    target_guidance: float | None = None,
    momentum: float = 0.0,
    beta: float = 0.0,
    mask: torch.Tensor | None = None,
    over: str = "channel",
    callback: StepCallback | None = None,
    matches_inversion: bool = False,
) -> torch.Tensor:
    """LEDITS regeneration: edit-friendly DDPM sampling with the inversion's noise maps, steered by SEGA.

    `target_guidance` is s_g when `denoise` returns a target-prompt row after the unconditional one. With a
    `mask` (model space, 1 = may change) the sample is the original trajectory outside it after every step,
    as SDEdit keeps its unselected region (Meng et al. 2022, Algorithm 4). With `matches_inversion` (see
    `retraced_steps`) the leading steps that would retrace the inversion are jumped over; `callback` then
    reports only the steps taken.
    """
    sched = inv.schedule
    n = len(sched)
    start = retraced_steps(n, concepts, momentum, matches_inversion)
    x = inv.x_start.float() if start == 0 else inv.original(start - 1)
    nu: torch.Tensor | None = None
    first = 1 if target_guidance is None else 2
    for i in range(start, n):
        t = sched.timesteps[i]
        live = live_concepts(concepts, i, momentum)  # a concept in warm-up without momentum: not evaluated
        out = denoise(x, t, list(range(first)) + [first + c for c in live]).float()
        rows = eps_and_x0(out, x.expand_as(out), sched.abar[i], sched.prediction)[0]
        eps_uncond = rows[:1]
        eps = eps_uncond
        if target_guidance is not None:
            eps = eps_uncond + target_guidance * (rows[1:2] - eps_uncond)
        if live:
            chosen = [concepts[c] for c in live]
            gamma, nu = sega_guidance(
                eps_uncond, list(rows[first:].split(1)), chosen, i, nu, momentum, beta, mask, over
            )
            eps = eps + gamma
        x, x0_hat = regenerate_step(x, eps, inv, i)
        if mask is not None:
            x = torch.lerp(inv.original(i), x, mask)
        if callback is not None:
            callback(Step(i + 1, n, x, x0_hat))
    return x
