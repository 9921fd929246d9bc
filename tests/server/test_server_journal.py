"""Jobs survive a restart: finished results come back by id, unfinished jobs say they were lost, and
SIGTERM gives every open event stream a final status before the server exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Event

import httpx
import numpy as np
import pytest
from nb_live import TOKEN, FakeEngine, free_port, from_b64, live_server, png_b64

from noisebrush.core.server.journal import FINISHED, JobRecord, Journal, Retention

HERE = Path(__file__).parent


def client(url: str, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def wait_for(c: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {statuses}")


def read_events(c: httpx.Client, job_id: str, opened: Event | None = None) -> list[tuple[str, dict]]:
    out = []
    with c.stream("GET", f"/v1/jobs/{job_id}/events", timeout=60) as r:
        assert r.status_code == 200
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
                if opened is not None:
                    opened.set()
    return out


def test_a_finished_result_is_fetched_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    guide = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    with live_server(FakeEngine(steps=2), port=port, state_dir=tmp_path) as (url, _):
        c = client(url)
        body = {"kind": "sdedit", "guide": png_b64(guide), "variations": 2}
        done = c.post("/v1/jobs", json=body).json()["id"]
        failed = c.post("/v1/jobs", json={**body, "prompt": "explode"}).json()["id"]
        first = wait_for(c, done, FINISHED)
        before_failed = wait_for(c, failed, FINISHED)
    assert first["status"] == "succeeded" and before_failed["status"] == "failed"

    with live_server(FakeEngine(), port=port, state_dir=tmp_path) as (url, _):
        c = client(url)
        again = c.get(f"/v1/jobs/{done}").json()
        assert again["status"] == "succeeded" and again["images"] == first["images"]
        assert np.array_equal(from_b64(again["images"][1]), 255 - guide)
        assert again["created"] == first["created"] and again["finished"] == first["finished"]
        after_failed = c.get(f"/v1/jobs/{failed}").json()
        assert after_failed["error"] == before_failed["error"] and after_failed["error_kind"] == "engine"
        assert read_events(c, done)[-1] == ("status", {"status": "succeeded"})  # a late stream ends at once
        assert c.post(f"/v1/jobs/{done}/cancel").json()["status"] == "succeeded"
        unknown = c.get("/v1/jobs/0123abcd")
        assert unknown.status_code == 404 and "kept for 24 h" in unknown.json()["detail"]


def test_jobs_unfinished_at_shutdown_are_lost_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    img = {"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))}
    with live_server(FakeEngine(steps=100_000, delay=0.01), port=port, state_dir=tmp_path) as (url, _):
        c = client(url)
        running = c.post("/v1/jobs", json=img).json()["id"]
        queued = c.post("/v1/jobs", json=img).json()["id"]
        cancelled = c.post("/v1/jobs", json=img).json()["id"]
        c.post(f"/v1/jobs/{cancelled}/cancel")
        wait_for(c, running, ("running",))
    with live_server(FakeEngine(), port=port, state_dir=tmp_path) as (url, _):
        c = client(url)
        for job_id in (running, queued):
            body = c.get(f"/v1/jobs/{job_id}").json()
            assert body["status"] == "failed" and body["error_kind"] == "lost", body
            assert "lost when the server restarted" in body["error"] and job_id in body["error"]
        assert c.get(f"/v1/jobs/{cancelled}").json()["status"] == "cancelled"


def test_the_journal_keeps_only_what_retention_allows(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    now = time.time()

    def rec(i: int, finished: float, size: int = 10) -> JobRecord:
        return JobRecord(
            f"j{i}", "sdedit", "succeeded", finished - 1, finished - 1, finished, results=(b"p" * size,)
        )

    j = Journal(path, Retention(seconds=3600, jobs=3, bytes=35))
    j.record(rec(0, now - 7200))  # older than an hour
    for i in range(1, 6):
        j.record(rec(i, now - 100 + i))
    assert j.load("j0") is None  # too old
    assert [j.load(f"j{i}") is not None for i in range(1, 6)] == [False, False, True, True, True]
    j.record(rec(6, now, size=30))  # 30 + 10 bytes of the next newest are over 35: only j6 stays
    assert j.load("j6") is not None and j.load("j5") is None
    j.record(JobRecord("j6", "sdedit", "running", now))  # a late write never takes a job back
    assert j.load("j6").status == "succeeded"  # type: ignore[union-attr]
    j.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_sigterm_ends_open_event_streams_with_a_final_status(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NOISEBRUSH_TOKEN_FILE": str(tmp_path / "cfg" / "token"), "PYTHONPATH": str(HERE)}
    argv = ["serve", "--port", str(port), "--state-dir", str(tmp_path / "state")]
    code = f"import sys, nb_live; sys.exit(nb_live.serve_cli_with_fake_engine({argv!r}, 100000, 0.01))"

    def start() -> tuple[subprocess.Popen, httpx.Client]:
        log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 - the process writes it until it exits
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        token = (tmp_path / "cfg" / "token").read_text().strip()
        return proc, client(f"http://127.0.0.1:{port}", token)

    proc, c = start()
    try:
        img = {"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))}
        running = c.post("/v1/jobs", json=img).json()["id"]
        queued = c.post("/v1/jobs", json=img).json()["id"]
        opened = [Event(), Event()]
        with ThreadPoolExecutor(2) as pool:
            streams = [
                pool.submit(read_events, c, j, o) for j, o in zip((running, queued), opened, strict=True)
            ]
            assert all(o.wait(30) for o in opened), "the event streams did not open"
            proc.send_signal(signal.SIGTERM)
            events = [s.result(timeout=30) for s in streams]
        assert proc.wait(30) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
    for job_id, evs in zip((running, queued), events, strict=True):
        kind, last = evs[-1]
        assert kind == "status" and last["status"] == "failed" and last["error_kind"] == "lost", evs[-3:]
        assert "shutting down" in last["error"] and job_id in last["error"]
    assert any(k == "progress" for k, _ in events[0])  # the running one was cut mid-run, not before

    proc, c = start()  # the same state folder: both answer that they were lost
    try:
        for job_id in (running, queued):
            body = c.get(f"/v1/jobs/{job_id}").json()
            assert body["error_kind"] == "lost" and "lost when the server restarted" in body["error"], body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_refuses_a_state_folder_it_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from noisebrush.core.cli import serve as cli_serve

    monkeypatch.setenv("NOISEBRUSH_TOKEN_FILE", str(tmp_path / "cfg" / "token"))
    (tmp_path / "file").write_text("not a folder")
    parser = argparse.ArgumentParser()
    cli_serve.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", "--port", str(free_port()), "--state-dir", str(tmp_path / "file")])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("noisebrush") and "cannot open the job journal" in err and "--state-dir" in err
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--keep-hours", "0"])
    assert "above 0" in capsys.readouterr().err
    default = parser.parse_args(["serve"])
    assert default.state_dir is None and default.keep_hours == 24.0  # None: beside the token file
