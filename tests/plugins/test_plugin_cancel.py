"""Cancel reaches the server when the user asks, not with the job's next event; and GIMP's arguments,
which come back as None on later GIMP starts, still make a job the server accepts.

The fake engine here takes seconds per step: a client that waits for the next event before it sends
cancel is caught by the server seeing the cancel only after step 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gimp_logic
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nb_live import TOKEN, FakeEngine, live_server
from noisebrush_krita import nb_png
from noisebrush_krita.nb_client import Client
from noisebrush_krita.nb_edit import Settings, job_body
from noisebrush_krita.nb_jobs import Cancelled, Stop, Target, run_jobs

from noisebrush.core.server import wire

STEP_S = 2.0  # seconds per fake step: far longer than a cancel request takes, even on a loaded box


def record_cancels(app: Any) -> list[tuple[str, int]]:
    """(job id, the job's step when the cancel request arrived) for every cancel the server receives."""
    queue = app.state.queue
    real = queue.cancel
    seen: list[tuple[str, int]] = []

    def spy(job_id: str) -> Any:
        job = queue.get(job_id)
        seen.append((job_id, job.step if job is not None else -1))
        return real(job_id)

    queue.cancel = spy
    return seen


@pytest.fixture()
def slow_server() -> Iterator[tuple[str, Any, list[tuple[str, int]]]]:
    with live_server(FakeEngine(steps=3, delay=STEP_S), preview_interval=0.0) as (url, app):
        yield url, app, record_cancels(app)


def wait_until(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def target() -> Target:
    px = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8).tobytes()
    return Target("n", "Layer", (0, 0, 8, 8), px, None)


def test_stop_reaches_the_server_before_the_next_step(slow_server: Any) -> None:
    url, app, cancels = slow_server
    stop, first_step = Stop(), threading.Event()
    steps: list[tuple[int, int, int]] = []
    outcome: list[BaseException] = []

    def on_progress(i: int, step: int, total: int) -> None:
        steps.append((i, step, total))

    def on_preview(i: int, box: Any, rgba: bytes) -> None:  # step 1's last event: none until step 2
        first_step.set()

    def work() -> None:
        try:
            client = Client(url, TOKEN)
            run_jobs(client, Settings(), [target(), target()], on_progress, on_preview, stop)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert first_step.wait(20)
    reported = len(steps)
    stop.set()  # returns at once: the request goes out on its own thread
    wait_until(lambda: len(cancels) == 1)  # the two layers went as one batch job
    thread.join(20)
    assert [type(e) for e in outcome] == [Cancelled]
    (batch,) = app.state.queue.jobs()
    assert batch.kind == "batch" and batch.frame == 0
    assert dict(cancels)[batch.id] == 1, "cancel reached the server only after the next step"
    assert batch.status == "cancelled"
    assert len(steps) == reported, "progress was reported after the user cancelled"


def test_stop_set_before_submit_sends_no_job(slow_server: Any) -> None:
    url, app, _ = slow_server
    stop = Stop()
    stop.set()
    with pytest.raises(Cancelled):
        run_jobs(Client(url, TOKEN), Settings(), [target()], cancel=stop)
    assert app.state.queue.jobs() == []


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from gimp_guard import CancelGuard
from nb_client import Client
from nb_edit import Settings
from nb_jobs import Target, run_jobs
client = Client(sys.argv[2], sys.argv[3])
guard = CancelGuard(client)
def progress(i, step, total):
    print("step", step, flush=True)
t = Target("n", "Layer", (0, 0, 8, 8), bytes(8 * 8 * 4), None)
try:
    run_jobs(client, Settings(), [t], progress, cancel=guard)
finally:
    guard.close()
print("done", flush=True)
"""


def run_plugin_child(gimp_dir: Path, url: str) -> subprocess.Popen[str]:
    """A stand-in for the GIMP plug-in process: run_jobs with the plug-in's CancelGuard, in its own
    process group so that killing the group, as GIMP does for a plug-in that made one, kills it all."""
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(gimp_dir), url, TOKEN],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_killed_gimp_plugin_cancels_its_job_through_the_guard(
    installed_plugins: tuple[Path, Path], slow_server: Any
) -> None:
    """GIMP's progress Cancel kills the plug-in (SIGKILL): its guard process must cancel the job."""
    url, app, cancels = slow_server
    child = run_plugin_child(installed_plugins[1], url)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().split() == ["step", "1"]
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        wait_until(lambda: len(cancels) == 1)
        (job,) = app.state.queue.jobs()
        assert cancels == [(job.id, 1)], "the guard cancelled only after the next step, or never"
        wait_until(lambda: job.done)
        assert job.status == "cancelled"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def test_guard_leaves_a_finished_run_alone(installed_plugins: tuple[Path, Path]) -> None:
    with live_server(FakeEngine(steps=2, delay=0.01), preview_interval=0.0) as (url, app):
        cancels = record_cancels(app)
        child = run_plugin_child(installed_plugins[1], url)
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0 and out.splitlines()[-1] == "done"
        (job,) = app.state.queue.jobs()
        assert job.status == "succeeded" and cancels == []


# -- GIMP's arguments: '' on the first start, None on later ones ------------------------------------------


def gimp_values(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """What a procedure's config may hold: for each argument None (restored from GIMP's cache) or a value
    in the argument's range."""
    fields = {}
    for arg in gimp_logic.args_for(kind):
        if arg.name in ("server-url", "token"):
            continue
        if isinstance(arg.default, bool):
            value: st.SearchStrategy[Any] = st.booleans()
        elif isinstance(arg.default, str):
            value = st.sampled_from(["", "snow", "snow, -fog"])
        elif isinstance(arg.default, int):
            value = st.integers(int(arg.low), int(arg.high))
        else:
            value = st.floats(arg.low, arg.high)
        fields[arg.name] = st.none() | value
    return st.fixed_dictionaries(fields)


@pytest.mark.parametrize("kind", ["sdedit", "ledits"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_gimp_arguments_none_or_set_make_a_job_the_server_accepts(kind: str, data: st.DataObject) -> None:
    raw = data.draw(gimp_values(kind))
    values = gimp_logic.read_args(lambda name: raw.get(name), kind)
    s = gimp_logic.settings_from(values, kind)
    png = nb_png.encode(8, 8, 4, bytes(8 * 8 * 4))
    body = job_body(s, png, None)
    model = wire.SDEditJob if kind == "sdedit" else wire.LeditsJob
    got_kind, req = wire.to_request(model.model_validate(body), max_pixels=10_000)
    assert got_kind == kind
    for arg in gimp_logic.args_for(kind):
        if arg.field and raw.get(arg.name) is None and isinstance(arg.default, str):
            assert getattr(s, arg.field) in ("", "default"), arg.name


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("steps", 20000, "steps must be a whole number from 0 to 10000, got 20000"),
        ("strength", "high", "strength must be a number from 0 to 1, got 'high'"),
        ("prompt", 3, "prompt must be text, got int 3"),
    ],
)
def test_gimp_arguments_out_of_range_say_what_is_allowed(name: str, raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gimp_logic.read_args(lambda n: raw if n == name else None, "sdedit")


def test_gimp_run_with_cached_none_arguments_adds_its_layer() -> None:
    """The second GIMP start's case end to end (fake host): every text argument None, one new layer."""
    from test_plugin_client import FakeGimp

    host = FakeGimp(16, 12, None)
    src = host.layer("Layer 1", 0)
    for kind in ("sdedit", "ledits"):
        values = gimp_logic.read_args(lambda name: None, kind)
        assert values["server-url"] == "" and values["token"] == ""
        with live_server(FakeEngine(steps=2), preview_interval=0.0) as (url, _app):
            made = gimp_logic.run(
                host, None, [src], gimp_logic.settings_from(values, kind), Client(url, TOKEN)
            )
        assert [d["name"] for d in made] == [f"Layer 1 ({'SDEdit' if kind == 'sdedit' else 'LEDITS'})"]
