"""Host tests: a live server on loopback with the real engine and bundled prior.

Without the bundled prior they skip, unless NOISEBRUSH_HOSTS_FAKE_ENGINE=1 asks for the fake engine
(useful while working on the plugins; it inverts the selected pixels).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "server"))
sys.path.insert(0, str(REPO / "tests" / "hosts"))

from nb_live import TOKEN, FakeEngine, live_server  # noqa: E402
from slow_server import STEP_S, SlowServer  # noqa: E402

BUNDLED = REPO / "resources" / "models" / "default"
SUBMITTED: list[str] = []  # the kind of every job POSTed to host_server, in order


def _count_submits(app: Any) -> None:
    queue = app.state.queue
    real = queue.submit

    def spy(kind: str, request: Any) -> Any:
        SUBMITTED.append(kind)
        return real(kind, request)

    queue.submit = spy


@pytest.fixture(scope="session")
def submitted() -> list[str]:
    """The kinds of the jobs host_server has been sent so far (a test compares before and after)."""
    return SUBMITTED


class _Renamed:
    """The real engine with model "default" read from another folder (NOISEBRUSH_HOSTS_MODEL)."""

    def __init__(self, engine: Any, model: str) -> None:
        self.engine, self.model = engine, model

    def sdedit(self, req: Any, callback: Any = None, should_stop: Any = None) -> Any:
        return self.engine.sdedit(dataclasses.replace(req, model=self.model), callback, should_stop)

    def ledits(self, req: Any, callback: Any = None, should_stop: Any = None) -> Any:
        return self.engine.ledits(dataclasses.replace(req, model=self.model), callback, should_stop)


@pytest.fixture(scope="session")
def host_server() -> Iterator[tuple[str, str, int]]:
    """(URL, token, steps) of a live server for the hosts.

    Real engine with the bundled prior; NOISEBRUSH_HOSTS_MODEL=PATH serves that model as "default"
    instead; NOISEBRUSH_HOSTS_FAKE_ENGINE=1 uses the fake engine (no torch).
    """
    if os.environ.get("NOISEBRUSH_HOSTS_FAKE_ENGINE") == "1":
        with live_server(FakeEngine(steps=8, delay=0.05), preview_interval=0.0) as (url, app):
            _count_submits(app)
            yield url, TOKEN, 0
        return
    override = os.environ.get("NOISEBRUSH_HOSTS_MODEL")
    if not override and not (BUNDLED / "model_index.json").exists():
        pytest.skip(
            "the bundled prior is not in resources/models/default yet "
            "(NOISEBRUSH_HOSTS_MODEL=PATH or NOISEBRUSH_HOSTS_FAKE_ENGINE=1 stand in for it)"
        )
    from noisebrush.core.engine.engine import Engine

    engine: Any = Engine() if not override else _Renamed(Engine(), override)
    with live_server(engine, preview_interval=0.2) as (url, app):
        _count_submits(app)
        yield url, TOKEN, 8


@pytest.fixture()
def slow_server() -> Iterator[SlowServer]:
    """For cancel tests: what is measured is the client, so the engine is the fake one on every machine."""
    with live_server(FakeEngine(steps=4, delay=STEP_S), preview_interval=0.0) as (url, app):
        slow = SlowServer(url, TOKEN, app)
        queue = app.state.queue
        real = queue.cancel

        def spy(job_id: str) -> Any:
            job = queue.get(job_id)
            slow.cancels.append((job_id, job.step if job is not None else -1, time.time()))
            return real(job_id)

        queue.cancel = spy
        yield slow


ROOT = Path(os.environ.get("NOISEBRUSH_GIMP_ROOT", "/var/cache/noisebrush/gimp-root"))


@pytest.fixture(scope="module")
def gimp_root() -> Iterator[Path]:
    if not (ROOT / "usr" / "bin" / "gimp-console-3.0").exists():
        pytest.skip(f"no GIMP 3 root at {ROOT}: run .ci/hosts.sh (as root) to build it")
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        pytest.skip("driving the GIMP 3 root needs root (chroot)")
    mounted = subprocess.run(["mountpoint", "-q", str(ROOT / "proc")]).returncode == 0
    if not mounted:
        subprocess.run(["mount", "-t", "proc", "proc", str(ROOT / "proc")], check=True)
    try:
        yield ROOT
    finally:
        if not mounted:
            subprocess.run(["umount", str(ROOT / "proc")], check=False)
