"""Batch jobs over a real socket: one request over many images through the batch runner the CLI uses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nb_live import TOKEN, FakeEngine, free_port, from_b64, live_server, png_b64

from noisebrush.core.engine import budget
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput

FINISHED = ("succeeded", "failed", "cancelled")


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)


def finish(c: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in FINISHED:
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def frames(n: int, size: tuple[int, int] = (16, 24), channels: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(20, 236, (*size, channels), dtype=np.uint8) for _ in range(n)]


def batch(images: list[np.ndarray], **fields: object) -> dict:
    return {"kind": "batch", "operation": "sdedit", "images": [png_b64(a) for a in images], **fields}


@pytest.fixture(scope="module")
def fake() -> Iterator[httpx.Client]:
    with live_server(FakeEngine(steps=3), preview_interval=0.0, max_frames=8) as (url, _):
        with client(url) as c:
            yield c


# -- the fake engine: order, failures, limits, progress, cancel ---------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 6), bad=st.sets(st.integers(0, 5)), masked=st.booleans(), alpha=st.booleans())
def test_every_frame_comes_back_once_in_order_and_a_bad_frame_fails_alone(
    fake: httpx.Client, n: int, bad: set[int], masked: bool, alpha: bool
) -> None:
    images = frames(n, channels=4 if alpha else 3, seed=n)
    for k in bad & set(range(n)):
        images[k][0, 0, :3] = (1, 2, 3)  # the fake engine fails this frame
    mask = np.zeros((16, 24), np.uint8)
    mask[:, 12:] = 255
    body = batch(
        images, names=[f"layer {k}" for k in range(n)], **({"mask": png_b64(mask)} if masked else {})
    )
    r = fake.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    done = finish(fake, r.json()["id"])
    failed = bad & set(range(n))
    if len(failed) == n:
        assert done["status"] == "failed" and done["error"].startswith("every frame failed; frame 0:")
        assert done.get("images") is None and all(done["frame_errors"])
        return
    assert done["status"] == "succeeded", done
    assert done["frames"] == n and len(done["images"]) == n == len(done["frame_errors"])
    sel = mask > 0 if masked else np.ones((16, 24), bool)
    for k, (a, png, why) in enumerate(zip(images, done["images"], done["frame_errors"], strict=True)):
        if k in failed:
            assert png is None and "exploded" in why, (k, why)
            continue
        out = from_b64(png)
        assert why is None and out.shape == a.shape
        assert np.array_equal(out[~sel], a[~sel])  # unselected pixels come back bit-identical
        assert np.array_equal(out[sel][:, :3], 255 - a[sel][:, :3])


def test_a_ledits_batch_keeps_each_frame_and_its_alpha(fake: httpx.Client) -> None:
    images = frames(3, channels=4, seed=3)
    body = {**batch(images), "operation": "ledits", "concepts": [{"text": "cat"}]}
    done = finish(fake, fake.post("/v1/jobs", json=body).json()["id"])
    assert done["status"] == "succeeded", done
    for a, png in zip(images, done["images"], strict=True):
        out = from_b64(png)
        assert out.shape == a.shape and np.array_equal(out[..., 3], a[..., 3])
        assert np.array_equal(out[..., :3], 255 - a[..., :3])


def test_too_many_frames_are_refused_naming_the_limit(fake: httpx.Client) -> None:
    r = fake.post("/v1/jobs", json=batch(frames(9)))
    assert r.status_code == 413 and "a batch of 9 images" in r.json()["detail"]
    assert "at most 8 per batch" in r.json()["detail"]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"images": []}, 422, "images"),
        ({"names": ["a"]}, 400, "names has 1 entries for 2 images"),
        ({"mask": png_b64(np.zeros((5, 5), np.uint8))}, 400, "frame 0 (frame0): the mask is 5x5"),
        ({"strength": 2}, 400, "strength must be in [0, 1]"),
        ({"variations": 2}, 422, "variations"),
        ({"operation": "paint"}, 422, "a batch's operation"),
        ({"images": [png_b64(np.zeros((16, 16, 3), np.uint8)), "!!"]}, 400, "image 1 is not valid base64"),
        ({"seed": 2**63 - 1}, 400, "seed plus the highest frame number"),
    ],
)
def test_a_bad_batch_is_refused_at_submit_with_what_is_wrong(
    fake: httpx.Client, change: dict, code: int, words: str
) -> None:
    r = fake.post("/v1/jobs", json={**batch(frames(2)), **change})
    assert r.status_code == code, r.text
    assert words in json.dumps(r.json()["detail"]), r.json()


def need(req: SDEditRequest) -> int:
    """The least budget `budget.check` lets `req` through with (it is monotone in the budget)."""
    low, high = 1, 1 << 44
    while low < high:
        mid = (low + high) // 2
        try:
            budget.check(req, mid)
            high = mid
        except BadInput:
            low = mid + 1
    return low


def test_the_memory_budget_applies_to_each_frame_at_submit() -> None:
    small, big = np.zeros((64, 64, 3), np.uint8), np.zeros((512, 512, 3), np.uint8)
    limit = need(SDEditRequest(guide=small))
    assert need(SDEditRequest(guide=big)) > limit
    with live_server(FakeEngine(steps=1), memory_budget=limit) as (url, _), client(url) as c:
        assert c.post("/v1/jobs", json=batch([small, small])).status_code == 201
        r = c.post("/v1/jobs", json=batch([small, big, small], names=["a", "b", "c"]))
        assert r.status_code == 400 and r.json()["detail"].startswith("frame 1 (b): "), r.text


def test_progress_says_frame_k_of_n_and_the_step() -> None:
    with live_server(FakeEngine(steps=3, delay=0.01)) as (url, _), client(url) as c:
        job = c.post("/v1/jobs", json=batch(frames(3))).json()
        assert job["frames"] == 3
        seen = []
        with c.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "progress":
                    data = json.loads(line[6:])
                    if data.get("step"):
                        seen.append((data["frame"], data["frames"], data["step"], data["total"]))
    assert seen == [(k, 3, s, 3) for k in range(3) for s in (1, 2, 3)]


def test_cancel_stops_a_running_batch_at_once() -> None:
    engine = FakeEngine(steps=500, delay=0.01)
    with live_server(engine) as (url, _), client(url) as c:
        job_id = c.post("/v1/jobs", json=batch(frames(4))).json()["id"]
        while c.get(f"/v1/jobs/{job_id}").json()["step"] < 2:
            time.sleep(0.01)
        asked = time.monotonic()
        c.post(f"/v1/jobs/{job_id}/cancel")
        done = finish(c, job_id, timeout=10)
        took = time.monotonic() - asked
        assert done["status"] == "cancelled" and done.get("images") is None
        assert took < 1.0, f"the batch took {took:.2f} s to stop"
        time.sleep(0.2)
        assert len(engine.calls) == 1  # no later frame started


def test_a_waiting_batch_holds_pngs_not_arrays() -> None:
    with live_server(FakeEngine(steps=100_000, delay=0.01)) as (url, app), client(url) as c:
        blocker = c.post("/v1/jobs", json=batch(frames(1))).json()["id"]
        waiting = c.post("/v1/jobs", json=batch(frames(3, size=(256, 256)))).json()["id"]
        held = app.state.queue.get(waiting).inputs
        assert not any(isinstance(v, np.ndarray) for v in vars(held).values())
        assert all(isinstance(p, bytes) for p in held.images) and held.nbytes > 0
        c.post(f"/v1/jobs/{waiting}/cancel")
        assert app.state.queue.get(waiting).inputs is None
        c.post(f"/v1/jobs/{blocker}/cancel")


def test_a_finished_batch_is_kept_by_the_journal(tmp_path: Path) -> None:
    port = free_port()
    images = frames(3)
    images[1][0, 0, :3] = (1, 2, 3)
    with live_server(FakeEngine(steps=1), port=port, state_dir=tmp_path) as (url, _), client(url) as c:
        job_id = c.post("/v1/jobs", json=batch(images)).json()["id"]
        first = finish(c, job_id)
    assert first["status"] == "succeeded" and first["images"][1] is None
    with live_server(FakeEngine(), port=port, state_dir=tmp_path) as (url, _), client(url) as c:
        again = c.get(f"/v1/jobs/{job_id}").json()
    assert again["status"] == "succeeded" and again["kind"] == "batch"
    assert again["images"] == first["images"] and again["frame_errors"] == first["frame_errors"]
    assert again["frames"] == 3 and "exploded" in again["frame_errors"][1]
    assert np.array_equal(from_b64(again["images"][2]), 255 - images[2])


# -- the real engine: a batch is the single jobs it replaces --------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from noisebrush.core.engine.engine import Engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOISEBRUSH_MODELS", str(tmp_path_factory.getbasetemp()))
        with live_server(Engine()) as (url, _), client(url) as c:
            yield c


def run(c: httpx.Client, body: dict) -> dict:
    r = c.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    done = finish(c, r.json()["id"])
    assert done["status"] == "succeeded", done
    return done


@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_equals_single_jobs_with_the_runners_seeds(
    real: httpx.Client, ddpm_model: Path, shared: bool
) -> None:
    images = frames(3, size=(32, 32), seed=7)
    mask = np.zeros((32, 32), np.uint8)
    mask[4:28, 8:24] = 255
    fields = {"model": str(ddpm_model), "steps": 8, "strength": 0.6, "seed": 5, "device": "cpu"}
    fields["mask"] = png_b64(mask)
    got = run(real, batch(images, shared_noise=shared, **fields))["images"]
    for k, a in enumerate(images):
        seed = 5 if shared else 5 + k
        single = run(real, {"kind": "sdedit", "guide": png_b64(a), **fields, "seed": seed})["images"][0]
        assert np.array_equal(from_b64(got[k]), from_b64(single)), f"frame {k} differs from seed {seed}"
    assert not np.array_equal(from_b64(got[0])[mask > 0], images[0][mask > 0])  # the edit did something


@pytest.mark.slow
def test_a_ledits_batch_equals_single_ledits_jobs(real: httpx.Client, sd_model: Path) -> None:
    images = frames(2, size=(32, 32), seed=8)
    fields = {"model": str(sd_model), "steps": 6, "seed": 2, "concepts": [{"text": "cat"}], "device": "cpu"}
    got = run(real, {**batch(images, **fields), "operation": "ledits"})["images"]
    for k, a in enumerate(images):
        single = run(real, {"kind": "ledits", "image": png_b64(a), **fields, "seed": 2 + k})["images"][0]
        assert np.array_equal(from_b64(got[k]), from_b64(single)), f"frame {k}"


NO_RAY = """
import sys
sys.path.insert(0, "tests/server")
import httpx, numpy as np
from nb_live import TOKEN, FakeEngine, live_server, png_b64
with live_server(FakeEngine(steps=1)) as (url, _):
    c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    body = {"kind": "batch", "operation": "sdedit", "images": [png_b64(np.zeros((8, 8, 3), np.uint8))] * 2}
    job = c.post("/v1/jobs", json=body).json()["id"]
    while c.get(f"/v1/jobs/{job}").json()["status"] != "succeeded":
        pass
print("ray" in sys.modules)
"""


def test_without_ray_a_batch_runs_here_and_ray_is_never_imported() -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", NO_RAY], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@pytest.mark.slow
def test_a_batch_on_ray_actors_equals_single_runs_here(
    ddpm_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'noisebrush[cluster]')")
    import torch

    from noisebrush.core.engine.engine import Engine

    monkeypatch.setenv("NOISEBRUSH_MODELS", str(ddpm_model.parent))
    images = frames(3, size=(32, 32), seed=9)
    fields = {"model": str(ddpm_model), "steps": 8, "strength": 0.6, "seed": 5, "device": "cpu"}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        with live_server(FakeEngine(), ray="auto") as (url, app), client(url) as c:
            done = run(c, batch(images, **fields))
            pool = app.state.queue._batches._pool
            assert pool is not None and len(pool.actors) == 2 and len(pool.frame_pids) == 3
    finally:
        ray.shutdown()
    torch.set_num_threads(1)  # as each actor runs
    engine = Engine()
    for k, a in enumerate(images):
        want = engine.sdedit(SDEditRequest(guide=a, **{**fields, "seed": 5 + k}))[0]
        np.testing.assert_array_equal(from_b64(done["images"][k]), want, err_msg=f"frame {k}")
