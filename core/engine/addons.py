"""What an SDEdit request adds to its prior for one run: LoRA files, a few-step sampler, a ControlNet.

Each is put on the cached prior when the run starts and taken off when it ends, whatever happens, so the next
run (or a LEDITS run) sees the prior as loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from noisebrush.core.engine import control, loras, schedulers
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.requests import SDEditRequest


@contextmanager
def applied(prior: Prior, req: SDEditRequest) -> Iterator[SDEditRequest]:
    """Yields the request to run: a few-step sampler's own step count filled in when the request left it."""
    if req.sampler != "default" and req.steps is None:
        req = dataclasses.replace(req, steps=schedulers.FEW_STEPS[req.sampler])
    schedulers.check_sampler(prior, req.sampler, req.strength, req.steps or prior.default_steps)
    with ExitStack() as stack:
        stack.enter_context(loras.applied(prior, req.loras))
        stack.enter_context(schedulers.using(prior, req.sampler))
        stack.enter_context(control.applied(prior, req))
        yield req
