"""The server with the real Engine: a tiny random prior built offline, and the bundled prior when present."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from nb_live import TOKEN, from_b64, live_server, png_b64

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "resources" / "models" / "default"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from noisebrush.core.engine.engine import Engine

    # The server takes model paths only inside the model folders: make the tiny test models' folder one.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOISEBRUSH_MODELS", str(tmp_path_factory.getbasetemp()))
        with live_server(Engine(), preview_interval=0.0) as (url, _app):
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
                yield c


def finish(c: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = c.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def _run_masked(c: httpx.Client, model: str, size: int, steps: int) -> None:
    g = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : size // 2, size // 4 : 3 * size // 4] = 255
    body = {
        "kind": "sdedit",
        "guide": png_b64(g),
        "mask": png_b64(mask),
        "model": model,
        "steps": steps,
        "strength": 0.5,
        "seed": 1,
        "device": "cpu",
    }
    job = c.post("/v1/jobs", json=body)
    assert job.status_code == 201, job.text
    previews = 0
    with c.stream("GET", f"/v1/jobs/{job.json()['id']}/events") as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and '"png"' in line:
                previews += 1
                json.loads(line[6:])
    done = finish(c, job.json()["id"])
    assert done["status"] == "succeeded", done
    out = from_b64(done["images"][0])
    assert out.shape == g.shape
    keep = mask == 0
    assert np.array_equal(out[keep], g[keep]), "unmasked pixels changed"
    assert previews > 0


def test_tiny_prior_round_trip(real_server: httpx.Client, ddpm_model: Path) -> None:
    _run_masked(real_server, str(ddpm_model), 32, 10)


def test_unknown_model_is_refused_at_submit_and_the_server_keeps_serving(
    real_server: httpx.Client, ddpm_model: Path
) -> None:
    g = png_b64(np.zeros((16, 16, 3), np.uint8))
    bad = real_server.post("/v1/jobs", json={"kind": "sdedit", "guide": g, "model": "no-such-model"})
    assert bad.status_code == 400 and "no-such-model" in bad.json()["detail"]
    good = real_server.post(
        "/v1/jobs", json={"kind": "sdedit", "guide": g, "model": str(ddpm_model), "steps": 4, "device": "cpu"}
    ).json()
    assert finish(real_server, good["id"])["status"] == "succeeded"


@pytest.mark.skipif(
    not (BUNDLED / "model_index.json").exists(),
    reason="the bundled prior is not in resources/models/default yet",
)
def test_bundled_prior_round_trip(real_server: httpx.Client) -> None:
    _run_masked(real_server, "default", 64, 20)


def test_ledits_through_the_server(real_server: httpx.Client, sd_model: Path) -> None:
    img = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    body = {
        "kind": "ledits",
        "image": png_b64(img),
        "mask": png_b64(mask),
        "model": str(sd_model),
        "steps": 6,
        "concepts": [{"text": "cat"}],
        "device": "cpu",
    }
    job = real_server.post("/v1/jobs", json=body)
    assert job.status_code == 201, job.text
    done = finish(real_server, job.json()["id"])
    assert done["status"] == "succeeded", done
    out = from_b64(done["images"][0])
    assert out.shape == img.shape and np.array_equal(out[mask == 0], img[mask == 0])
