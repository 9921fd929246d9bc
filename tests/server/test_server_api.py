"""The HTTP contract over a real socket: auth, browser/rebinding refusal, limits, jobs, events."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
from nb_live import TOKEN, FakeEngine, from_b64, live_server, png_b64


def wait_done(client: httpx.Client, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_health_needs_no_token(server: str) -> None:
    r = httpx.get(f"{server}/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_no_token_and_wrong_token_are_401(server: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ):
        for method, path in (
            ("GET", "/v1/models"),
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/x"),
            ("GET", "/v1/jobs/x/events"),
            ("POST", "/v1/jobs/x/cancel"),
            ("GET", "/v1/openapi.json"),
        ):
            r = httpx.request(method, f"{server}{path}", headers=headers, json={})
            assert r.status_code == 401, (headers, path, r.status_code)
            assert "token" in r.json()["detail"]


def test_foreign_origin_is_403(server: str) -> None:
    for origin in ("http://evil.example", "null", "https://127.0.0.1", "http://localhost:1"):
        r = httpx.get(f"{server}/v1/models", headers={"Origin": origin, "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403, origin
        r = httpx.get(f"{server}/v1/health", headers={"Origin": origin})
        assert r.status_code == 403, origin


def test_own_origin_is_accepted(server: str) -> None:
    r = httpx.get(f"{server}/v1/health", headers={"Origin": server})
    assert r.status_code == 200


def test_bad_host_is_403(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"127.0.0.1.nip.io:{port}",
        f"127.0.0.1:{int(port) + 1}",
        "",
    ):
        r = httpx.get(f"{server}/v1/health", headers={"Host": host})
        assert r.status_code in (403, 400), host  # h11 itself refuses an empty Host with 400
        if host:
            assert r.status_code == 403 and "rebinding" in r.json()["detail"]
    assert httpx.get(f"{server}/v1/health", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_oversize_body_is_413_with_limit(client: httpx.Client) -> None:
    r = client.post("/v1/jobs", content=b"x" * 2_000_001, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "2000000" in r.json()["detail"]

    def chunks():  # no Content-Length: streamed
        for _ in range(40):
            yield b"y" * 100_000

    r = client.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "2000000" in r.json()["detail"]


def test_too_many_pixels_is_413_with_limit(client: httpx.Client) -> None:
    big = np.zeros((257, 256, 3), np.uint8)
    r = client.post("/v1/jobs", json={"kind": "sdedit", "guide": png_b64(big)})
    assert r.status_code == 413
    assert "65536" in r.json()["detail"] and "257" in r.json()["detail"]


def test_malformed_requests_are_4xx_with_a_message(client: httpx.Client, guide: np.ndarray) -> None:
    good = png_b64(guide)
    cases = [
        b"not json",
        b"[]",
        json.dumps({"kind": "paint", "guide": good}).encode(),
        json.dumps({"kind": "sdedit"}).encode(),
        json.dumps({"kind": "sdedit", "guide": "!!!"}).encode(),
        json.dumps({"kind": "sdedit", "guide": "aGVsbG8="}).encode(),
        json.dumps({"kind": "sdedit", "guide": good, "strength": 2}).encode(),
        json.dumps({"kind": "sdedit", "guide": good, "strength": "NaN"}).encode(),
        json.dumps({"kind": "sdedit", "guide": good, "mask": png_b64(np.zeros((5, 5), np.uint8))}).encode(),
        json.dumps({"kind": "sdedit", "guide": png_b64(np.zeros((4, 4, 3), np.uint8))}).encode(),
        json.dumps({"kind": "sdedit", "guide": good, "seed": -1}).encode(),
        json.dumps({"kind": "sdedit", "guide": good, "colour": 1}).encode(),
        json.dumps({"kind": "ledits", "image": good, "concepts": [{"text": " "}]}).encode(),
        json.dumps({"kind": "ledits", "image": good, "concepts": "cat"}).encode(),
    ]
    for body in cases:
        r = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (body[:80], r.status_code, r.text)
        assert r.json()["detail"], body[:80]
    assert client.get("/v1/jobs/does-not-exist").status_code == 404
    assert client.post("/v1/jobs/does-not-exist/cancel").status_code == 404


def test_sdedit_job_round_trip(client: httpx.Client, guide: np.ndarray) -> None:
    mask = np.zeros(guide.shape[:2], np.uint8)
    mask[8:24, 8:40] = 255
    r = client.post(
        "/v1/jobs",
        json={"kind": "sdedit", "guide": png_b64(guide), "mask": png_b64(mask), "variations": 2, "seed": 3},
    )
    assert r.status_code == 201, r.text
    body = wait_done(client, r.json()["id"])
    assert body["status"] == "succeeded" and body["step"] == body["total"] == 4
    assert len(body["images"]) == 2
    out = from_b64(body["images"][0])
    assert out.shape == guide.shape
    keep = mask == 0
    assert np.array_equal(out[keep], guide[keep])
    assert np.array_equal(out[~keep], 255 - guide[~keep])


def test_ledits_job_keeps_alpha(client: httpx.Client) -> None:
    img = np.random.default_rng(1).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    r = client.post("/v1/jobs", json={"kind": "ledits", "image": png_b64(img), "concepts": [{"text": "cat"}]})
    assert r.status_code == 201, r.text
    body = wait_done(client, r.json()["id"])
    assert body["status"] == "succeeded"
    assert from_b64(body["images"][0]).shape == (16, 16, 4)


def test_models(client: httpx.Client) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200 and r.json()[0]["name"] == "default"


def test_engine_failure_fails_that_job_alone(client: httpx.Client, guide: np.ndarray) -> None:
    ids = [
        client.post("/v1/jobs", json={"kind": "sdedit", "guide": png_b64(guide), "prompt": p}).json()["id"]
        for p in ("", "explode", "reject", "")
    ]
    done = [wait_done(client, i) for i in ids]
    assert [d["status"] for d in done] == ["succeeded", "failed", "failed", "succeeded"]
    assert done[1]["error_kind"] == "engine" and "exploded" in done[1]["error"]
    assert done[2]["error_kind"] == "bad_input" and "allowed" in done[2]["error"]
    assert client.get("/v1/health").status_code == 200


def test_events_stream_progress_previews_and_final_status() -> None:
    with live_server(FakeEngine(steps=5, delay=0.05), preview_interval=0.0) as (url, _):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        img = np.full((16, 16, 3), 10, np.uint8)
        job = httpx.post(
            f"{url}/v1/jobs", headers=headers, json={"kind": "sdedit", "guide": png_b64(img)}
        ).json()
        kinds, previews = [], []
        with httpx.stream("GET", f"{url}/v1/jobs/{job['id']}/events", headers=headers, timeout=30) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    kinds.append((event, data.get("status")))
                    if event == "preview":
                        previews.append(from_b64(data["png"]))
        assert kinds[-1] == ("status", "succeeded")
        assert sum(k == "progress" for k, _ in kinds) == 5
        assert previews and previews[-1].shape == (16, 16, 3) and (previews[-1] == 245).all()


def test_cancel_queued_and_running_jobs() -> None:
    with live_server(FakeEngine(steps=200, delay=0.02)) as (url, _):
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        img = png_b64(np.zeros((8, 8, 3), np.uint8))
        first = c.post("/v1/jobs", json={"kind": "sdedit", "guide": img}).json()["id"]
        second = c.post("/v1/jobs", json={"kind": "sdedit", "guide": img}).json()
        assert second["status"] == "queued" and second["position"] == 0
        assert c.post(f"/v1/jobs/{second['id']}/cancel").json()["status"] == "cancelled"
        while c.get(f"/v1/jobs/{first}").json()["status"] != "running":
            time.sleep(0.01)
        c.post(f"/v1/jobs/{first}/cancel")
        body = wait_done(c, first, timeout=5)
        assert body["status"] == "cancelled" and body["step"] < 200 and body.get("images") is None


def test_full_queue_is_429_and_the_server_recovers() -> None:
    with live_server(FakeEngine(steps=50, delay=0.02), max_queued=2) as (url, app):
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        body = {"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))}
        answers = [c.post("/v1/jobs", json=body) for _ in range(6)]  # 1 running + 2 waiting fit
        codes = [r.status_code for r in answers]
        assert codes.count(201) >= 3 and codes[-1] == 429, codes
        assert "limit 2" in answers[-1].json()["detail"]
        for job in app.state.queue.jobs():
            c.post(f"/v1/jobs/{job.id}/cancel")
        assert c.post("/v1/jobs", json=body).status_code == 201
