"""SDEdit samplers as pure functions: `(denoise, x, schedule, ..., callback=None) -> x`.

`denoise(x, t)` is the prior's output for the current sample: noise (or v) for VP priors, the score for VE
priors. `keep` is the clean guide in the model's space and `mask` (1 = may change) its selection there;
after every step the kept region is replaced by the guide re-noised to the new level (paper, Algorithms 3-4).
A grey mask value is a per-pixel strength (differential diffusion; `changed`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

Denoise = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass
class Step:
    """What a sampler reports after each step: its position, the sample and its x0 prediction."""

    index: int  # 1-based within this sampler call
    total: int
    x: torch.Tensor
    x0: torch.Tensor


StepCallback = Callable[[Step], None]


def start_index(steps: int, strength: float) -> int:
    """diffusers' img2img arithmetic: run the last int(steps * strength) steps of a `steps`-step schedule."""
    return steps - min(int(steps * strength), steps)


def sdedit_vp(
    denoise: Denoise,
    keep: torch.Tensor,
    scheduler: Any,
    strength: float,
    steps: int,
    generators: list[torch.Generator],
    repeats: int = 1,
    mask: torch.Tensor | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """SDEdit with a VP (DDPM-type) prior, any diffusers scheduler (paper Algorithm 2/4, repeated K times).

    Noise is added once per repeat at the first kept timestep (as diffusers' img2img does); at strength 1 the
    run starts from pure noise, as the paper's t0 = 1 and diffusers' DDPMPipeline do. The kept region is
    re-noised with the same noise tensor at every step, as the official code and diffusers' inpainting do.
    """
    scheduler.set_timesteps(steps, device=keep.device)
    order = getattr(scheduler, "order", 1)
    begin = start_index(steps, strength) * order
    timesteps = scheduler.timesteps[begin:]
    if len(timesteps) == 0:
        return keep
    step_kwargs = _step_kwargs(scheduler, generators)
    x = keep
    total = len(timesteps) * repeats
    for k in range(repeats):
        if k:
            scheduler.set_timesteps(steps, device=keep.device)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        noise = randn_tensor(keep.shape, generator=generators, device=keep.device, dtype=keep.dtype)
        x = (
            noise * scheduler.init_noise_sigma
            if strength >= 1.0
            else scheduler.add_noise(x, noise, timesteps[:1])
        )
        for i, t in enumerate(timesteps):
            model_out = denoise(scheduler.scale_model_input(x, t), t)
            x_t = x
            out = scheduler.step(model_out, t, x, **step_kwargs)
            x = out.prev_sample
            if mask is not None:
                if i + 1 < len(timesteps):
                    kept = scheduler.add_noise(keep, noise, timesteps[i + 1 : i + 2])
                else:
                    kept = keep
                x = changed(mask, i, len(timesteps), x, kept)
            if callback is not None:
                x0 = getattr(out, "pred_original_sample", None)
                if x0 is None:
                    x0 = predict_x0(scheduler, x_t, model_out, t)
                callback(Step(k * len(timesteps) + i + 1, total, x, x0))
    return x


def changed(mask: torch.Tensor, i: int, n: int, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Differential diffusion (Levin and Fried 2023): after step i of n, a pixel whose mask value m is below
    the step's threshold 1 - i / n is reset to the guide noised to the current level, so m acts as a
    per-pixel strength (m = 0.3 is edited over the last 30 % of the run). A binary mask is plain masked
    SDEdit: 1 is free at every step, 0 at none."""
    return torch.where(mask >= 1.0 - i / n, x, kept)


def _step_kwargs(scheduler: Any, generators: list[torch.Generator]) -> dict[str, Any]:
    # As diffusers' prepare_extra_step_kwargs: eta 0 for DDIM, the generator where the step draws noise.
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict[str, Any] = {}
    if "eta" in params:
        kwargs["eta"] = 0.0
    if "generator" in params:
        kwargs["generator"] = generators
    return kwargs


def predict_x0(scheduler: Any, x: torch.Tensor, model_out: torch.Tensor, t: Any) -> torch.Tensor:
    """x0 from the model output for schedulers whose step does not report it (e.g. PNDM)."""
    abar = scheduler.alphas_cumprod.to(x.device)[int(t)].to(x.dtype)
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind == "v_prediction":
        return abar.sqrt() * x - (1 - abar).sqrt() * model_out
    if kind == "sample":
        return model_out
    return (x - (1 - abar).sqrt() * model_out) / abar.sqrt()


def ve_sigmas(
    sigma_min: float, sigma_max: float, strength: float, steps: int, eps: float = 1e-5
) -> np.ndarray:
    """Noise levels of the VE-SDE, s(t) = s_min (s_max / s_min)^t, for t from t0 down to eps, then 0."""
    n = max(int(steps * strength), 1)
    t = np.linspace(strength, eps, n)
    return np.append(sigma_min * (sigma_max / sigma_min) ** t, 0.0)


def sdedit_ve(
    denoise: Denoise,
    keep: torch.Tensor,
    sigmas: np.ndarray,
    generators: list[torch.Generator],
    repeats: int = 1,
    mask: torch.Tensor | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """SDEdit with a VE score model: perturb to s(t0), then Euler-Maruyama (paper Algorithm 1/3).

    Each step is x <- x + e^2 score(x, s) + e z with e^2 = s_i^2 - s_{i+1}^2; the last step adds no noise.
    """
    n = len(sigmas) - 1
    x = keep
    total = n * repeats
    for k in range(repeats):
        z_keep = randn_tensor(keep.shape, generator=generators, device=keep.device, dtype=keep.dtype)
        x = x + float(sigmas[0]) * z_keep
        for i in range(n):
            s, s_next = float(sigmas[i]), float(sigmas[i + 1])
            e2 = s * s - s_next * s_next
            sigma_t = torch.full((x.shape[0],), s, device=x.device, dtype=x.dtype)
            score = denoise(x, sigma_t)
            x0 = x + s * s * score  # Tweedie: E[x0 | x] under the VE perturbation
            x_mean = x + e2 * score
            if i + 1 < n:
                z = randn_tensor(x.shape, generator=generators, device=x.device, dtype=x.dtype)
                x = x_mean + e2**0.5 * z
            else:
                x = x_mean
            if mask is not None:
                x = changed(mask, i, n, x, keep + s_next * z_keep)
            if callback is not None:
                callback(Step(k * n + i + 1, total, x, x0))
    return x
