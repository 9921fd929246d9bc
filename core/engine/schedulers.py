"""Few-step samplers by name, each a diffusers scheduler built from the prior's own schedule.

- "lcm": `LCMScheduler` (Luo et al. 2023), for LCM models and LCM-LoRA; built as diffusers' LCM-LoRA guide
  builds it, `LCMScheduler.from_config(scheduler.config)`.
- "euler-trailing": `EulerDiscreteScheduler` with `timestep_spacing="trailing"`, which Hyper-SD and
  SDXL-Lightning ask for: the first step starts at the last training timestep.

The img2img arithmetic stays diffusers' (core/engine/samplers.py `start_index`): only the last
int(steps * strength) steps run, so a low strength with few steps may run none; that is refused here with the
smallest step count that runs one, instead of returning the guide unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from noisebrush.core.engine.priors import Prior
from noisebrush.core.errors import BadInput

# Steps when the request leaves them to the model: a few-step sampler at the model's 50 would waste 40.
FEW_STEPS = {"lcm": 8, "euler-trailing": 8}


def scheduler_for(name: str, cls: Any, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The scheduler class and config the sampler `name` runs with, from the prior's own."""
    import diffusers

    if name == "default":
        return cls, config
    if name == "lcm":
        return diffusers.LCMScheduler, dict(config)
    if name == "euler-trailing":
        return diffusers.EulerDiscreteScheduler, {**config, "timestep_spacing": "trailing"}
    raise BadInput(f"unknown sampler {name!r}; allowed: default, {', '.join(FEW_STEPS)}")


def fewest_steps(strength: float) -> int:
    """The smallest `steps` with int(steps * strength) >= 1 (diffusers' img2img runs that many)."""
    steps = max(1, math.ceil(1.0 / strength))
    while int(steps * strength) < 1:  # float rounding: 1 / 0.3 * 0.3 can fall short of 1
        steps += 1
    return steps


def check_sampler(prior: Prior, name: str, strength: float, steps: int) -> None:
    """Refuse what a few-step sampler cannot run: a VE prior, too many LCM steps, or no step at all."""
    if name == "default":
        return
    if prior.is_ve:
        raise BadInput(f"sampler {name!r} needs a DDPM-type (VP) model; this one is {prior.kind}")
    if name == "lcm":
        most = int(prior.scheduler_config.get("original_inference_steps", 50))
        if steps > most:
            raise BadInput(
                f"sampler 'lcm' runs at most {most} steps (its original_inference_steps); got {steps}"
            )
    if 0.0 < strength and int(steps * strength) < 1:
        raise BadInput(
            f"strength {strength:g} with {steps} steps runs no step of sampler {name!r} (only int(steps x "
            f"strength) steps run); use at least {fewest_steps(strength)} steps or a higher strength"
        )


@contextmanager
def using(prior: Prior, name: str) -> Iterator[None]:
    """`prior.new_scheduler()` builds the sampler `name`'s scheduler while the block runs."""
    if name == "default":
        yield
        return
    saved = prior.scheduler_class, prior.scheduler_config
    prior.scheduler_class, prior.scheduler_config = scheduler_for(name, *saved)
    try:
        yield
    finally:
        prior.scheduler_class, prior.scheduler_config = saved
