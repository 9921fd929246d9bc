"""Bench cases of the job path: cancel latency, a server's peak for a 4096 job, its memory after 100 jobs.

Cancel latency runs the real `JobQueue` and `Engine` with the bundled prior in this process. The two server
cases each run the server app (`server.create_app`, the submit route included) in a fresh process, driven
through Starlette's TestClient, so the kernel's high-water mark is that server's alone.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from typing import Any

import numpy as np

from noisebrush.bench.harness import Options, Row
from noisebrush.bench.memory import run_child

CANCEL_SIZES = (512, 1024, 4096)
CANCEL_AFTER_S = 1.0  # into the run, when the user clicks cancel: inside the first step at these sizes
TOKEN = "b" * 32


def full_mask_request(side: int, steps: int = 30, device: str = "cpu") -> Any:
    from noisebrush.core.engine.requests import SDEditRequest

    guide = np.full((side, side, 3), 200, np.uint8)
    guide[: side // 2] = (90, 140, 220)
    return SDEditRequest(
        guide=guide, mask=np.ones((side, side), np.float32), steps=steps, strength=0.5, device=device
    )


def cancel_latency(options: Options) -> list[Row]:
    """cancel latency: click to job state "cancelled", 512/1024/4096 px full-mask jobs, real queue and engine"""
    from noisebrush.core.engine import budget
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.server.jobs import JobQueue

    device = "cpu" if not options.cuda else options.device
    engine = Engine()
    engine.prior("default", device)  # loaded before the clock starts: a server has its model warm
    queue = JobQueue(lambda: engine)
    rows = []
    try:
        for side in CANCEL_SIZES:
            req = full_mask_request(side, device=device)
            start = time.perf_counter()
            try:
                budget.check(req, engine.memory_budget)  # what the server's submit route does
            except Exception as exc:
                took = time.perf_counter() - start
                rows.append(_refused_row(f"cancel {side}px: refused at submit (seconds)", took, str(exc)))
                continue
            job = queue.submit("sdedit", req)
            del req
            while job.status == "queued":
                time.sleep(0.01)
            time.sleep(CANCEL_AFTER_S)
            clicked = time.perf_counter()
            queue.cancel(job.id)
            while not job.done:
                time.sleep(0.005)
            latency = time.perf_counter() - clicked
            rows.append(
                Row(
                    f"cancel {side}px full mask: click to cancelled",
                    latency,
                    None,
                    "s",
                    latency,
                    "<= 1",
                    f"bundled prior, {device}; cancel {CANCEL_AFTER_S:g} s into the run (inside step 1 of 15); "
                    f"job ended {job.status} at step {job.step}",
                )
            )
    finally:
        queue.close()
    return rows


def _refused_row(case: str, seconds: float, message: str) -> Row:
    return Row(case, seconds, None, "s", seconds, "<= 1", f"refused: {message}")


def server_peak(options: Options) -> list[Row]:
    """server peak RSS for a 4096x4096 full-mask job (or its refusal at submit)"""
    out = _child({"case": "peak", "side": 4096})
    peak_gb = out["peak"] / 1e9
    if out["status"] == 400:
        note = f"refused at submit in {out['seconds']:.2f} s (HTTP 400): {out['detail']}"
    else:
        note = f"HTTP {out['status']}, job {out.get('final')}; {out['seconds']:.1f} s"
    return [
        Row("server peak RSS, 4096x4096 full-mask job (GB)", peak_gb, None, "GB", peak_gb, "<= 3", note),
        Row("server: 4096 refusal at submit (seconds)", out["seconds"], None, "s", out["seconds"], "<= 1"),
    ]


def queue_growth(options: Options) -> list[Row]:
    """server RSS after 100 jobs (4096 ones cancelled in the queue) / after the first 10"""
    out = _child({"case": "growth", "jobs": 100})
    ratio = out["rss_100"] / out["rss_10"]
    return [
        Row(
            "server RSS after 100 jobs / after 10",
            out["rss_100"] / 1e6,
            out["rss_10"] / 1e6,
            "MB",
            ratio,
            "<= 1.1",
            f"{out['big']} 4096x4096 full-mask jobs cancelled while queued behind {out['small']} 128x128 jobs "
            "that ran (bundled prior, CPU, 30 steps); submit's budget off so the big jobs queue; "
            f"peak RSS {out['peak'] / 1e6:.0f} MB",
        )
    ]


CASES = {"cancel": cancel_latency, "server-peak": server_peak, "queue-memory": queue_growth}


# -- the server processes ------------------------------------------------------------------------------
def _child(spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    return run_child("noisebrush.bench.jobs", spec, timeout)


def _png(rgb_or_l: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb_or_l).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _body(side: int, steps: int) -> dict[str, Any]:
    req = full_mask_request(side)
    return {
        "kind": "sdedit",
        "guide": _png(req.guide),
        "mask": _png(np.full((side, side), 255, np.uint8)),
        "model": "default",
        "device": "cpu",
        "steps": steps,
    }


def _app(memory_budget: int | None) -> Any:
    from fastapi.testclient import TestClient

    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.server.app import ServerConfig, create_app

    config = ServerConfig(token=TOKEN, memory_budget=memory_budget)
    # The engine keeps its own default budget: a big job that reached it would be refused, not run.
    return TestClient(create_app(config, Engine))


def _wait(client: Any, job_id: str) -> dict[str, Any]:
    while True:
        job = dict(client.get(f"/v1/jobs/{job_id}?images=false", headers=_auth()).json())
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.02)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _peak_child(spec: dict[str, Any]) -> dict[str, Any]:
    from noisebrush.bench.harness import peak_rss_bytes

    body = _body(spec["side"], 30)
    with _app(None) as client:
        start = time.perf_counter()
        r = client.post("/v1/jobs", json=body, headers=_auth())
        seconds = time.perf_counter() - start
        out: dict[str, Any] = {"status": r.status_code, "seconds": seconds}
        if r.status_code == 400:
            out["detail"] = r.json()["detail"]
        elif r.status_code == 201:
            out["final"] = _wait(client, r.json()["id"])["status"]
            out["seconds"] = time.perf_counter() - start
    out["peak"] = peak_rss_bytes()
    return out


def _growth_child(spec: dict[str, Any]) -> dict[str, Any]:
    from noisebrush.bench.harness import peak_rss_bytes, rss_bytes

    small, big = _body(128, 30), _body(4096, 30)
    counts = {"small": 0, "big": 0}
    rss: dict[int, int] = {}
    with _app(0) as client:
        done = 0
        while done < spec["jobs"]:
            running = client.post("/v1/jobs", json=small, headers=_auth()).json()["id"]
            counts["small"] += 1
            queued = client.post("/v1/jobs", json=big, headers=_auth()).json()["id"]
            client.post(f"/v1/jobs/{queued}/cancel", headers=_auth())
            counts["big"] += 1
            _wait(client, running)
            done += 2
            if done == 10:
                rss[10] = rss_bytes()
        rss[100] = rss_bytes()
    return {"rss_10": rss[10], "rss_100": rss[100], "peak": peak_rss_bytes(), **counts}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    run = _peak_child if spec["case"] == "peak" else _growth_child
    print(json.dumps(run(spec)))
