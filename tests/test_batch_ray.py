"""The batch runner on a real Ray cluster of two nodes on this machine (`ray.cluster_utils.Cluster`): every
frame written once and in order, an actor killed mid-run, the driver killed and rerun, a bad frame failing
alone. Bounded in time (about a minute here); skipped when Ray (noisebrush[cluster]) is not installed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisebrush.core.batch.inputs import frames_from
from noisebrush.core.batch.runner import Batch, run_batch
from tests.test_batch import Writes, frame, kill_after, outputs, write_sequence

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'noisebrush[cluster]')")
from noisebrush.core.batch.cluster import RayPool  # noqa: E402

pytestmark = pytest.mark.slow


def fields(model: Path) -> dict:
    return {"model": str(model), "strength": 0.6, "steps": 10, "device": "cpu"}


@pytest.fixture(scope="module")
def cluster():
    """Two nodes of one CPU each; every Ray process it started is gone afterwards (checked by pid)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    pids = [
        p.process.pid for node in c.list_all_nodes() for procs in node.all_processes.values() for p in procs
    ]
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        deadline = time.monotonic() + 30
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _alive(p)]
            time.sleep(0.2)
        assert not alive, f"Ray processes left running: {alive}"


@pytest.fixture(scope="module")
def pool(cluster, ddpm_model):
    """One pool of two actors for the module: each actor's start (a Python with torch) costs seconds."""
    with RayPool(workers=2, model=str(ddpm_model), device="cpu") as p:
        yield p


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; its parent simply has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


RAY_DRIVER = """
import sys
from pathlib import Path
import ray
from noisebrush.core.batch.inputs import frames_from
from noisebrush.core.batch.runner import Batch, run_batch
from noisebrush.core.batch.cluster import RayPool
ray.init(address=sys.argv[4], logging_level="ERROR")
batch = Batch(frames_from(Path(sys.argv[1])), Path(sys.argv[2]),
              {"model": sys.argv[3], "strength": 0.6, "steps": 10, "device": "cpu"})
run_batch(batch, RayPool(workers=2, model=sys.argv[3], device="cpu"),
          lambda r: print(r.status, r.frame.name, flush=True))
"""


def test_a_killed_driver_is_rerun_and_finishes_only_what_was_missing(cluster, tmp_path, ddpm_model, request):
    pattern = write_sequence(tmp_path / "in", 8, size=32)
    out = tmp_path / "out"
    kill_after([RAY_DRIVER, str(pattern), str(out), str(ddpm_model), cluster.address], lines=3, timeout=180)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 3 <= len(before) < 8
    pool = request.getfixturevalue(
        "pool"
    )  # made now: the killed driver's actors held the two CPUs until it died
    summary = run_batch(Batch(frames_from(pattern), out, fields(ddpm_model)), pool)
    assert len(summary.skipped) >= 3 and len(summary.skipped) + len(summary.done) == 8
    assert outputs(out) == [f"frame_{i:04d}.png" for i in range(8)]
    for name in summary.skipped:
        assert (out / f"{name}.png").stat().st_mtime_ns == before[f"{name}.png"]
    assert np.array_equal(np.asarray(Image.open(out / "frame_0000.png")).shape, frame(0, 32).shape)


def test_two_nodes_every_frame_once_in_order(pool, tmp_path, ddpm_model, monkeypatch):
    pattern = write_sequence(tmp_path / "in", 6, size=32, broken=(2,))
    writes = Writes(monkeypatch)
    order: list[int] = []
    summary = run_batch(
        Batch(frames_from(pattern), tmp_path / "out", fields(ddpm_model)),
        pool,
        lambda r: order.append(r.frame.index),
    )
    assert len(set(pool.nodes)) == 2  # one actor on each node
    assert len({pool.frame_pids[i] for i in (0, 1, 3, 4, 5)}) == 2  # both worked
    assert order == list(range(6))
    assert [p.name for p in writes.paths] == [f"frame_{i:04d}.png" for i in (0, 1, 3, 4, 5)]
    assert summary.failed[0][0] == "frame_0002" and "not an image" in summary.failed[0][1]
    # The same frames in-process give the same pixels: the cluster changes where, not what.
    from noisebrush.core.batch.runner import in_process

    local = run_batch(Batch(frames_from(pattern), tmp_path / "local", fields(ddpm_model)), in_process())
    assert len(local.done) == 5
    for i in (0, 1, 3):
        a = np.asarray(Image.open(tmp_path / "out" / f"frame_{i:04d}.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "local" / f"frame_{i:04d}.png")).astype(int)
        assert np.abs(a - b).max() <= 1


def test_an_actor_killed_mid_run_and_the_batch_still_completes_once(pool, tmp_path, ddpm_model, monkeypatch):
    pattern = write_sequence(tmp_path / "in", 8, size=32)
    writes = Writes(monkeypatch)
    killed: list[int] = []

    def kill_one(result) -> None:
        if not killed:  # the other actor is busy with a frame now: kill it mid-frame
            victim = next(p for p in pool.pids if p != pool.frame_pids[result.frame.index])
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    summary = run_batch(Batch(frames_from(pattern), tmp_path / "out", fields(ddpm_model)), pool, kill_one)
    workers_after = {pool.frame_pids[i] for i in range(2, 8)}
    assert killed and not summary.failed
    assert summary.done == [f"frame_{i:04d}" for i in range(8)]
    assert [p.name for p in writes.paths] == [f"frame_{i:04d}.png" for i in range(8)]  # once each, in order
    assert killed[0] not in workers_after  # the killed actor made nothing after it died
    assert len(workers_after) == 2  # Ray restarted it and the restarted actor took frames
    assert outputs(tmp_path / "out") == [f"frame_{i:04d}.png" for i in range(8)]
