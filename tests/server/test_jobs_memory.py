"""Waiting and cancelled jobs cost what their request cost, not what its images decode to."""

from __future__ import annotations

import gc
import time
import tracemalloc

import httpx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from nb_live import TOKEN, FakeEngine, from_b64, live_server, png_b64

from noisebrush.core.server import wire

BIG = 2048  # a 2048x2048 guide and mask decode to 29 MiB per job; as PNGs of flat colour, a few KiB
MiB = 1024 * 1024


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def big_job() -> dict:
    guide = np.full((BIG, BIG, 3), 90, np.uint8)
    mask = np.zeros((BIG, BIG), np.uint8)
    mask[BIG // 4 : BIG // 2, BIG // 4 : BIG // 2] = 255
    return {"kind": "sdedit", "guide": png_b64(guide), "mask": png_b64(mask)}


def test_memory_does_not_grow_with_queued_and_cancelled_big_jobs() -> None:
    # The worker is held by a long first job, so every big job waits in line until it is cancelled.
    with live_server(FakeEngine(steps=100_000, delay=0.01)) as (url, app):
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        tiny = {"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))}
        blocker = c.post("/v1/jobs", json=tiny).json()["id"]
        body = big_job()
        tracemalloc.start()
        try:
            c.post(f"/v1/jobs/{c.post('/v1/jobs', json=body).json()['id']}/cancel")  # warm up every path
            before = traced()
            waiting = [c.post("/v1/jobs", json=body).json()["id"] for _ in range(6)]
            queued = traced() - before
            after_rounds = []
            for _ in range(3):
                for job_id in waiting:
                    assert c.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
                after_rounds.append(traced() - before)
                waiting = [c.post("/v1/jobs", json=body).json()["id"] for _ in range(6)]
            for job_id in waiting:
                c.post(f"/v1/jobs/{job_id}/cancel")
            cancelled = traced() - before
        finally:
            tracemalloc.stop()
        # Holding the decoded arrays, six waiting jobs took 176 MiB and each round of cancelled ones as much.
        assert queued < 8 * MiB, f"six waiting {BIG}x{BIG} jobs hold {queued / MiB:.0f} MiB"
        assert max(after_rounds) < 8 * MiB and cancelled < 8 * MiB, (after_rounds, cancelled)
        jobs = app.state.queue.jobs()
        assert all(j.inputs is None for j in jobs if j.status == "cancelled")
        c.post(f"/v1/jobs/{blocker}/cancel")


def test_a_cancelled_waiting_job_releases_its_images_at_once() -> None:
    with live_server(FakeEngine(steps=100_000, delay=0.01)) as (url, app):
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        tiny = {"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))}
        blocker = c.post("/v1/jobs", json=tiny).json()["id"]
        waiting = c.post("/v1/jobs", json=big_job()).json()["id"]
        job = app.state.queue.get(waiting)
        held = job.inputs
        assert job.status == "queued" and held is not None
        assert not any(isinstance(v, np.ndarray) for v in vars(held).values())  # no decoded arrays wait
        assert held.nbytes < MiB
        c.post(f"/v1/jobs/{waiting}/cancel")
        assert job.status == "cancelled" and job.inputs is None
        c.post(f"/v1/jobs/{blocker}/cancel")


def test_a_finished_job_keeps_png_results_and_no_inputs() -> None:
    with live_server(FakeEngine(steps=2)) as (url, app):
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        guide = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
        job_id = c.post("/v1/jobs", json={"kind": "sdedit", "guide": png_b64(guide)}).json()["id"]
        deadline = time.monotonic() + 30
        while (body := c.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
            assert time.monotonic() < deadline and body["status"] in ("queued", "running"), body
            time.sleep(0.02)
        assert np.array_equal(from_b64(body["images"][0]), 255 - guide)
        job = app.state.queue.get(job_id)
        assert job.inputs is None and all(isinstance(r, str) for r in job.results)


images = st.tuples(st.integers(8, 40), st.integers(8, 40), st.sampled_from([3, 4]), st.booleans())


@settings(max_examples=25, deadline=None)
@given(images, st.integers(0, 2**32))
def test_a_held_body_decodes_to_the_request_it_was(shape: tuple[int, int, int, bool], seed: int) -> None:
    h, w, channels, with_mask = shape
    rng = np.random.default_rng(seed)
    guide = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    mask = rng.integers(0, 256, (h, w), dtype=np.uint8)
    for kind, field in (("sdedit", "guide"), ("ledits", "image")):
        raw: dict = {"kind": kind, field: "data:image/png;base64," + png_b64(guide), "seed": seed % 1000}
        if kind == "ledits":
            raw["concepts"] = [{"text": "cat"}]
        if with_mask:
            raw["mask"] = png_b64(mask)
        body = wire.SDEditJob(**raw) if kind == "sdedit" else wire.LeditsJob(**raw)
        _, want = wire.to_request(body, 4096 * 4096)
        held = wire.hold(body, 4096 * 4096)
        got = held.decode()
        assert type(got) is type(want)
        for name, value in vars(want).items():
            other = getattr(got, name)
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, other) and value.dtype == other.dtype, name
            else:
                assert value == other, name
