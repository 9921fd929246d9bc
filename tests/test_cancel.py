"""Cancel lands within one model block, in any loop around sampling, and leaves nothing behind.

Counts are of `should_stop` calls (one per model block or band of work), never seconds, so a loaded machine
cannot make these flaky.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.masks import feather
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import Cancelled
from noisebrush.core.server.jobs import CANCELLED, JobQueue


def big_guide(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def request(model, guide: np.ndarray, **kw) -> SDEditRequest:
    kw.setdefault("steps", 4)
    kw.setdefault("strength", 0.5)
    return SDEditRequest(guide=guide, model=str(model), device="cpu", **kw)


class Counter:
    """A `should_stop` that turns true once it has been asked `after` times."""

    def __init__(self, after: int) -> None:
        self.after, self.calls = after, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.after


def calls_in_a_whole_run(engine: Engine, req: SDEditRequest) -> int:
    never = Counter(after=10**9)
    engine.sdedit(req, should_stop=never)
    return never.calls


@pytest.mark.parametrize("model_fixture", ["ddpm_model", "sd_model"])
@pytest.mark.parametrize("after", [0, 3, 7])
def test_cancel_lands_in_the_next_block_before_the_step_ends(engine, model_fixture, after, request):
    model = request.getfixturevalue(model_fixture)
    steps: list[int] = []
    stop = Counter(after)
    with pytest.raises(Cancelled):
        engine.sdedit(request_for(model), callback=lambda p: steps.append(p.step), should_stop=stop)
    assert stop.calls == after + 1, "the run went on past the first block after cancel"
    assert steps == [], "a whole step finished after cancel"


def request_for(model) -> SDEditRequest:
    mask = np.ones((64, 64), np.float32)
    return request(model, big_guide(), mask=mask)


def test_cancel_after_the_last_step_stops_feather_and_composite(engine, ddpm_model):
    req = request_for(ddpm_model)
    blocks = calls_in_a_whole_run(engine, request(ddpm_model, big_guide()))  # no mask: model blocks only
    steps: list[int] = []
    stop = Counter(after=blocks)
    with pytest.raises(Cancelled):
        engine.sdedit(req, callback=lambda p: steps.append(p.step), should_stop=stop)
    assert steps and steps[-1] == steps[0] - 1 + len(steps), "sampling should have run to its end"
    assert stop.calls == blocks + 1


def test_hooks_are_gone_after_a_cancelled_run(engine, ddpm_model, sd_model):
    for model in (ddpm_model, sd_model):
        req = request_for(model)
        with pytest.raises(Cancelled):
            engine.sdedit(req, should_stop=Counter(after=2))
        later = engine.sdedit(req)
        fresh = Engine().sdedit(req)
        assert all(np.array_equal(a, b) for a, b in zip(later, fresh, strict=True))
        prior = engine.prior(str(model), "cpu")
        assert all(not b._forward_pre_hooks for b in prior.blocks())


def test_ledits_cancel_lands_within_a_block(engine, sd_ddim_model):
    req = LeditsRequest(image=big_guide(64), model=str(sd_ddim_model), device="cpu", steps=6)
    steps: list[int] = []
    stop = Counter(after=4)
    with pytest.raises(Cancelled):
        engine.ledits(req, callback=lambda p: steps.append(p.step), should_stop=stop)
    assert stop.calls == 5 and steps == []


def test_job_queue_cancel_lands_inside_the_running_step(ddpm_model):
    """The queue's cancel reaches the engine inside a model call: the job ends cancelled at step 0."""
    engine = Engine()
    queue = JobQueue(lambda: engine)
    prior = engine.prior(str(ddpm_model), "cpu")
    first_block = threading.Event()
    job_ids: list[str] = []

    def cancel_on_first_block(*_: object) -> None:
        if not first_block.is_set():
            first_block.set()
            queue.cancel(job_ids[0])

    # Registered before the engine's own hooks, so it runs first and the engine's hook sees the cancel.
    handle = prior.unet.down_blocks[0].register_forward_pre_hook(cancel_on_first_block)
    try:
        with queue._cond:  # the worker must not start the job before its id is known here
            job = queue.submit("sdedit", request_for(ddpm_model))
            job_ids.append(job.id)
        for _ in range(120):
            if job.done:
                break
            queue.wait(job, len(job.events), timeout=1.0)
    finally:
        handle.remove()
        queue.close()
    assert job.status == CANCELLED
    assert job.step == 0, "the job finished a step after it was cancelled"


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    radius=st.integers(0, 60),
    seed=st.integers(0, 2**16),
)
def test_feather_stays_inside_and_matches_a_direct_box_blur(h, w, radius, seed):
    """Outside the mask exactly 0, never above the mask, equal to the direct box blur up to its rounding."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((h, w)) > 0.3).astype(np.float32) * rng.choice([1.0, 0.5], (h, w)).astype(np.float32)
    out = feather(mask, radius)
    assert out.dtype == np.float32 and out.shape == mask.shape
    assert (out[mask == 0] == 0).all()
    assert (out >= 0).all() and (out <= mask).all()
    np.testing.assert_allclose(out, direct_feather(mask, radius), atol=2e-6)


def direct_feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """The feather before running sums, in float64: two direct box blurs (cost grows with radius squared)."""
    import torch
    import torch.nn.functional as F

    if radius <= 0:
        return mask.astype(np.float32)
    m = torch.from_numpy(mask).double()[None, None]
    blurred = m
    for _ in range(2):
        blurred = F.avg_pool2d(F.pad(blurred, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)
    return torch.minimum(m, torch.clamp(2.0 * blurred - 1.0, 0.0, 1.0))[0, 0].float().numpy()


def test_feather_deep_inside_is_exactly_one_and_it_stops_on_cancel():
    mask = np.zeros((600, 300), np.float32)
    mask[50:550, 50:250] = 1
    out = feather(mask, 20)
    assert (out[100:500, 100:200] == 1.0).all()
    stop = Counter(after=1)

    def check() -> None:
        if stop():
            raise Cancelled()

    with pytest.raises(Cancelled):
        feather(mask, 600, check)
    assert stop.calls == 2, "feather should look at cancel between bands of rows"
