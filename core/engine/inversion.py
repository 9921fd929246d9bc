"""Edit-friendly DDPM inversion (Huberman-Spiegelglas et al. 2023, arXiv 2304.06140), as LEDITS uses it.

Every x_t is drawn independently from q(x_t | x_0) (eq. 6 of the paper); then, from the highest regenerated
timestep down, the noise map z_t that carries the sampler from x_t exactly to x_{t-1} is extracted (eq. 5):

    x_{t-1} = mu_t(x_t) + sigma_t z_t,   mu_t = sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1} - sigma_t^2) eps,
    sigma_t^2 = (1 - abar_{t-1}) / (1 - abar_t) (1 - abar_t / abar_{t-1}),

the DDPM posterior written as DDIM with eta = 1 (Song et al. 2021, eq. 16). After each extraction x_{t-1} is
replaced by mu_t + sigma_t z_t computed with the stored (possibly half-precision) z_t, so regeneration follows
the very same trajectory and float error does not accumulate. Regenerating with the stored maps and the same
model output reproduces x_0.

Memory: one noise map per regenerated step, in the model's dtype (float16 on CUDA, float32 on CPU), plus the
start sample, x_0 and 5 KB of random-generator state per step. For Stable Diffusion at 2048x2048 (latents
4x256x256) a map is 0.5 MiB in float16: 42 maps (50 steps, skip 0.15) take about 22 MiB. For a pixel prior at
2048x2048 (3x2048x2048) a map is 24 MiB in float16 / 48 MiB in float32: 85 maps (100 steps, skip 0.15) take
about 2.0 GiB / 4.0 GiB. `Inversion.nbytes` reports the exact figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor

from noisebrush.core.engine.samplers import Step, StepCallback
from noisebrush.core.errors import BadInput

Denoise = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    """The regenerated part of a VP schedule, highest timestep first."""

    timesteps: list[int]  # regenerated timesteps, high to low
    abar: list[float]  # abar_t at each regenerated timestep
    abar_prev: list[float]  # abar of the level each step lands on: the next timestep, then the final level
    prediction: str  # the model's output: epsilon, v_prediction or sample
    total: int  # steps of the whole schedule, skipped ones included

    def __len__(self) -> int:
        return len(self.timesteps)


def edit_schedule(scheduler: Any, steps: int, skip: float) -> Schedule:
    """The last `steps - round(steps * skip)` timesteps of the scheduler's `steps`-step schedule.

    The timesteps are the scheduler's own (its spacing and offset); the step from the lowest one lands on the
    scheduler's final level (DDIM/PNDM `final_alpha_cumprod`, else abar = 1, the clean image).
    """
    abar_all = getattr(scheduler, "alphas_cumprod", None)
    if abar_all is None:
        raise BadInput(
            f"LEDITS needs a VP (DDPM-type) prior; {type(scheduler).__name__} has no alphas_cumprod"
        )
    scheduler.set_timesteps(steps)
    # multistep schedulers (PNDM's PLMS) repeat a timestep; each level is visited once here
    ts = sorted({int(round(float(t))) for t in scheduler.timesteps}, reverse=True)
    skipped = round(steps * skip)
    kept = ts[skipped:]
    if not kept:
        raise BadInput(
            f"skip {skip} of {steps} steps leaves no step to regenerate; lower skip or raise steps"
        )
    final = getattr(scheduler, "final_alpha_cumprod", None)
    final_abar = 1.0 if final is None else float(final)
    abar = [float(abar_all[t]) for t in kept]
    prev = abar[1:] + [final_abar]
    kind = scheduler.config.get("prediction_type", "epsilon")
    return Schedule(kept, abar, prev, kind, steps)


def eps_and_x0(
    out: torch.Tensor, x: torch.Tensor, abar: float, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and x0 predictions from the model output (DDPM eq. 15; v as in Salimans & Ho 2022)."""
    a, s = abar**0.5, (1.0 - abar) ** 0.5
    if prediction == "v_prediction":
        return a * out + s * x, a * x - s * out
    if prediction == "sample":
        return (x - a * out) / s, out
    return out, (x - s * out) / a


def posterior(
    x0: torch.Tensor, eps: torch.Tensor, abar: float, abar_prev: float
) -> tuple[torch.Tensor, float]:
    """mu_t and the scale of the noise map: DDIM eq. 12 with eta = 1 (sigma_t of eq. 16).

    At a step with no noise (landing on abar = 1) the map holds the residual itself (scale 1), so that
    regeneration still lands on x_0 exactly.
    """
    var = (1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev)
    var = max(var, 0.0)
    mu = abar_prev**0.5 * x0 + max(1.0 - abar_prev - var, 0.0) ** 0.5 * eps
    sigma = var**0.5
    return mu, sigma if sigma > 0.0 else 1.0


@dataclass
class Inversion:
    """The result of an inversion: enough to regenerate the image with any edit, and nothing more."""

    schedule: Schedule
    x_start: torch.Tensor  # x at the highest regenerated timestep (1, C, H, W), storage dtype
    noise_maps: torch.Tensor  # z_t per regenerated step (n, 1, C, H, W), storage dtype
    scales: list[float]  # sigma_t per step (1 where sigma_t = 0)
    x0: torch.Tensor  # the clean image in the model's space, storage dtype
    noise_states: list[torch.Tensor]  # CPU generator state before drawing n_t, per step (replays x_t)

    @property
    def nbytes(self) -> int:
        tensors = (self.x_start, self.noise_maps, self.x0, *self.noise_states)
        return sum(t.numel() * t.element_size() for t in tensors)

    def original(self, i: int) -> torch.Tensor:
        """The unedited trajectory after step i: x at the next level, drawn again from q(x_t | x_0); x_0 last."""
        sched = self.schedule
        x0 = self.x0.float()
        if i + 1 >= len(sched):
            return x0
        a = sched.abar[i + 1]
        return a**0.5 * x0 + (1.0 - a) ** 0.5 * _draw(self.noise_states[i + 1], x0)


def _draw(state: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator("cpu")
    gen.set_state(state)
    return randn_tensor(like.shape, generator=gen, device=like.device, dtype=torch.float32)


def invert(
    denoise: Denoise,
    x0: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator,
    store_dtype: torch.dtype | None = None,
    callback: StepCallback | None = None,
) -> Inversion:
    """Edit-friendly DDPM inversion (Huberman-Spiegelglas et al. 2023, eqs. 5-6, Algorithm 1).

    `denoise(x, t)` is the model output for the source (with its guidance already applied), given x in float32;
    `generator` a CPU
    generator. The independent draws n_t are made lowest timestep first, as diffusers' LEDITS++ draws them, and
    each is re-drawn from a saved generator state when needed, so no x_t is held beyond the current step.
    """
    dtype = store_dtype or x0.dtype
    x0 = x0.to(dtype).float()
    n = len(schedule)
    states: list[torch.Tensor] = [torch.empty(0)] * n
    for i in reversed(range(n)):
        states[i] = generator.get_state()
        randn_tensor(x0.shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)

    def drawn(i: int) -> torch.Tensor:  # eq. 6: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) n_t
        a = schedule.abar[i]
        return a**0.5 * x0 + (1.0 - a) ** 0.5 * _draw(states[i], x0)

    x_start = drawn(0).to(dtype)
    maps = torch.empty((n, *x0.shape), dtype=dtype, device=x0.device)
    scales: list[float] = []
    x = x_start.float()
    for i, t in enumerate(schedule.timesteps):
        out = denoise(x, t).float()
        eps, x0_hat = eps_and_x0(out, x, schedule.abar[i], schedule.prediction)
        mu, scale = posterior(x0_hat, eps, schedule.abar[i], schedule.abar_prev[i])
        target = drawn(i + 1) if i + 1 < n else x0
        maps[i] = ((target - mu) / scale).to(dtype)
        scales.append(scale)
        x = mu + scale * maps[i].float()  # the correction: continue from what regeneration will produce
        if callback is not None:
            callback(Step(i + 1, n, x, x0_hat))
    return Inversion(schedule, x_start, maps, scales, x0.to(dtype), states)


def regenerate_step(
    x: torch.Tensor, eps: torch.Tensor, inv: Inversion, i: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One edit-friendly DDPM step with the stored map: x_{t-1} = mu_t(x_t, eps) + sigma_t z_t (eq. 5).

    `eps` is the (possibly edited) noise prediction at x; returns (x_{t-1}, x0 prediction).
    """
    sched = inv.schedule
    abar = sched.abar[i]
    x0_hat = (x - (1.0 - abar) ** 0.5 * eps) / abar**0.5
    mu, _ = posterior(x0_hat, eps, abar, sched.abar_prev[i])
    return mu + inv.scales[i] * inv.noise_maps[i].float(), x0_hat
