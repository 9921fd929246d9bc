"""The GIMP plug-in inside a real GIMP 3 (a Debian trixie root from .ci/hosts.sh) against a live server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from slow_server import STEP_S, SlowServer

from noisebrush.core.cli.install_plugin import install_gimp

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]


class Profile:
    """One GIMP profile (HOME) inside the root with the plug-in installed, kept across GIMP starts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = Path("/tmp") / f"nb-{uuid.uuid4().hex[:8]}"  # as seen inside the root
        self.outside = root / self.work.relative_to("/")
        install_gimp(self.outside / "home" / ".config" / "GIMP" / "3.0" / "plug-ins")
        shutil.copy(REPO / "tests" / "hosts" / "gimp_driver.py", self.outside / "driver.py")

    def start(self, server: tuple[str, str, int], scenario: str, **env: str) -> subprocess.Popen[str]:
        """Start GIMP once in this profile; it runs the driver and quits."""
        url, token, steps = server
        (self.outside / "report.json").unlink(missing_ok=True)
        cmd = ["chroot", str(self.root), "env", f"HOME={self.work / 'home'}", f"NB_URL={url}"]
        cmd += [f"NB_TOKEN={token}", f"NB_REPORT={self.work / 'report.json'}", f"NB_SCENARIO={scenario}"]
        cmd += [f"NB_STEPS={steps}", *(f"{k}={v}" for k, v in env.items())]
        cmd += ["gimp-console-3.0", "-i", "--batch-interpreter=python-fu-eval"]
        cmd += ["-b", f"exec(open('{self.work / 'driver.py'}').read())", "--quit"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def report(self, gimp: subprocess.Popen[str], timeout: float = 300) -> dict:
        try:
            out, err = gimp.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            gimp.kill()
            out, err = gimp.communicate()
        path = self.outside / "report.json"
        if not path.exists():
            raise AssertionError(
                f"GIMP wrote no report (rc {gimp.returncode}):\n{out[-3000:]}\n{err[-3000:]}"
            )
        data = json.loads(path.read_text())
        assert data["ok"], data.get("error")
        data["stderr"] = err[-2000:]
        return data

    def run(self, server: tuple[str, str, int], scenario: str, **env: str) -> dict:
        data = self.report(self.start(server, scenario, **env))
        assert data["status"] == "success", (data["status"], data.get("message"), data["stderr"])
        return data

    def plugin_pids(self) -> list[int]:
        """The plug-in processes GIMP started for this profile (the chroot shares our process ids)."""
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            mine = str(self.work).encode()
            if proc.name.isdigit() and any(a.endswith(b"noisebrush-gimp.py") and mine in a for a in argv):
                pids.append(int(proc.name))
        return pids

    def remove(self) -> None:
        shutil.rmtree(self.outside, ignore_errors=True)


@pytest.fixture()
def profile(gimp_root: Path) -> Iterator[Profile]:
    p = Profile(gimp_root)
    yield p
    p.remove()


def run_gimp(root: Path, server: tuple[str, str, int], scenario: str) -> dict:
    """One GIMP start in a brand-new profile."""
    p = Profile(root)
    try:
        return p.run(server, scenario)
    finally:
        p.remove()


def test_gimp_selection_gives_new_layer_above_source(
    gimp_root: Path, host_server: tuple[str, str, int]
) -> None:
    data = run_gimp(gimp_root, host_server, "single")
    assert "<Image>/Filters/NoiseBrush" in data["menu_paths"]
    assert data["order"] == ["Layer 1 (SDEdit)", "Layer 1"]  # top first: right above its source
    (res,) = data["results"]
    assert res["size"] == [96, 80] and res["offsets"] == [0, 0]
    assert res["outside_equal"], "pixels outside the selection changed"
    assert res["changed_inside"] > 0


def test_gimp_three_layers_give_three_results(
    gimp_root: Path, host_server: tuple[str, str, int], submitted: list[str]
) -> None:
    before = len(submitted)
    data = run_gimp(gimp_root, host_server, "batch")
    assert submitted[before:] == ["batch"], "the layers were not sent as one batch job"
    assert data["order"] == [
        "Layer 3 (SDEdit)",
        "Layer 3",
        "Layer 2 (SDEdit)",
        "Layer 2",
        "Layer 1 (SDEdit)",
        "Layer 1",
    ]
    assert all(r["outside_equal"] and r["changed_inside"] > 0 for r in data["results"])


# What a painter types: words the bundled prior knows (the fake engine takes any).
FILLED = {
    "sdedit": {"prompt": "snow", "negative-prompt": "fog"},
    "ledits": {"prompt": "snow", "concepts": "snow, -fog"},
}
LABEL = {"sdedit": "SDEdit", "ledits": "LEDITS"}


@pytest.mark.parametrize("kind", ["sdedit", "ledits"])
def test_gimp_procedure_works_on_three_starts_in_one_profile(
    profile: Profile, host_server: tuple[str, str, int], kind: str
) -> None:
    """GIMP hands untouched text arguments over as '' on its first start after install and as None on
    later ones (restored from its cache); each start, with empty and with filled texts, makes its layer."""
    seen = []
    for text in ({}, {}, FILLED[kind]):  # starts 1 and 2 leave every text untouched, start 3 fills them
        data = profile.run(host_server, "single", NB_KIND=kind, NB_TEXT=json.dumps(text))
        seen.append(data["text_before_run"])
        assert data["order"] == [f"Layer 1 ({LABEL[kind]})", "Layer 1"], data["order"]
        (res,) = data["results"]
        assert res["outside_equal"], "pixels outside the selection changed"
        assert data["sources_unchanged"]
    assert seen[0]["prompt"] == "" and seen[2]["prompt"] == "snow", seen
    if kind == "sdedit":
        assert data["results"][0]["changed_inside"] > 0


@pytest.mark.parametrize("previews", [False, True])
def test_gimp_cancel_mid_run_leaves_the_image_as_it_was(
    profile: Profile, slow_server: SlowServer, previews: bool
) -> None:
    """Cancel in GIMP's progress bar makes GIMP kill the plug-in (GP_QUIT, then SIGKILL 10 ms later:
    gimp_plug_in_close). Done here the same way, mid-run: the plug-in's guard tells the server at once.
    Without the preview layer the image keeps exactly its layers and pixels; with it, the preview layer
    (drawn while the run went) is left above its source, inside the run's undo group that GIMP closed."""
    text = json.dumps({"previews": previews})
    gimp = profile.start(slow_server.server, "single", NB_KIND="sdedit", NB_TEXT=text)
    try:
        slow_server.wait_for(lambda: any(j.step >= 1 for j in slow_server.jobs()))
        time.sleep(0.5)  # the step's preview reaches the plug-in
        (pid,) = profile.plugin_pids()
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        slow_server.wait_for(lambda: len(slow_server.cancels) >= 1)
        data = profile.report(gimp)
    finally:
        if gimp.poll() is None:
            gimp.kill()
            gimp.wait()
    (job,) = slow_server.jobs()
    job_id, step, received = slow_server.cancels[0]
    latency = received - killed_at
    print(f"GIMP: cancel reached the server {latency * 1000:.0f} ms after the plug-in was killed")
    assert (job_id, step) == (job.id, 1), "cancel reached the server only after the next step"
    assert latency < STEP_S
    slow_server.wait_for(lambda: job.done)
    assert job.status == "cancelled"
    assert data["status"] != "success"
    assert data["order"] == (["NoiseBrush preview", "Layer 1"] if previews else ["Layer 1"])
    assert data["sources_unchanged"]


class Screen:
    """An Xvfb display that the root's programs reach through a bind mount of the X socket folder."""

    def __init__(self, root: Path) -> None:
        if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
            pytest.skip("needs Xvfb and xdotool (.ci/hosts.sh)")
        self.root = root
        self.number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
        self.display = f":{self.number}"
        self.xvfb = subprocess.Popen(
            ["Xvfb", self.display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{self.number}").exists():
            assert time.monotonic() < deadline and self.xvfb.poll() is None, "Xvfb did not start"
            time.sleep(0.05)
        self.sockets = root / "tmp" / ".X11-unix"
        self.sockets.mkdir(exist_ok=True)
        subprocess.run(["mount", "--bind", "/tmp/.X11-unix", str(self.sockets)], check=True)

    def xdotool(self, *args: str) -> str:
        env = {**os.environ, "DISPLAY": self.display}
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True).stdout

    def shot(self, path: Path) -> None:
        env = {**os.environ, "DISPLAY": self.display}
        subprocess.run(["import", "-window", "root", str(path)], env=env, check=False)

    def close(self) -> None:
        subprocess.run(["umount", str(self.sockets)], check=False)
        self.xvfb.terminate()
        self.xvfb.wait(10)


@pytest.fixture()
def screen(gimp_root: Path) -> Iterator[Screen]:
    s = Screen(gimp_root)
    yield s
    s.close()


def start_gimp_window(
    profile: Profile, screen: Screen, server: tuple[str, str, int], **env: str
) -> subprocess.Popen:
    """The full GIMP window (gimp-3.0) on the Xvfb screen, running the driver as a batch command."""
    url, token, steps = server
    (profile.outside / "report.json").unlink(missing_ok=True)
    cmd = ["chroot", str(profile.root), "env", f"HOME={profile.work / 'home'}", f"DISPLAY={screen.display}"]
    cmd += [
        f"NB_URL={url}",
        f"NB_TOKEN={token}",
        f"NB_REPORT={profile.work / 'report.json'}",
        f"NB_STEPS={steps}",
    ]
    cmd += [f"{k}={v}" for k, v in env.items()]
    cmd += ["gimp-3.0", "--no-splash", "--batch-interpreter=python-fu-eval"]
    cmd += ["-b", f"exec(open('{profile.work / 'driver.py'}').read())", "--quit"]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def wait_file(path: Path, gimp: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if gimp.poll() is not None or time.monotonic() > deadline:
            out, err = gimp.communicate()
            raise AssertionError(f"GIMP wrote no {path.name} (rc {gimp.returncode}):\n{err[-3000:]}")
        time.sleep(0.2)


def undo_in_window(screen: Screen) -> None:
    """Ctrl+Z in the image's window, as a painter presses it (GIMP 3's PDB has no procedure that undoes)."""
    (wid, *_) = screen.xdotool("search", "--onlyvisible", "--name", "Untitled").split() or [""]
    assert wid, "no image window"
    screen.xdotool("windowfocus", "--sync", wid)
    screen.xdotool("key", "--clearmodifiers", "ctrl+z")


@pytest.mark.parametrize("scenario", ["single", "batch"])
def test_gimp_one_undo_takes_a_generation_back(
    profile: Profile, screen: Screen, host_server: tuple[str, str, int], scenario: str
) -> None:
    """In the full GIMP window: the procedure (previews shown in a layer that becomes the result), then one
    Ctrl+Z in the image window; the layer stack (names, offsets, sizes, pixels) is exactly as before."""
    gimp = start_gimp_window(
        profile,
        screen,
        host_server,
        NB_SCENARIO="undo",
        NB_LAYERS=scenario,
        NB_TEXT=json.dumps({"previews": True}),
    )
    try:
        wait_file(profile.outside / "report.json.ran", gimp)
        ran = json.loads((profile.outside / "report.json.ran").read_text())
        assert ran.get("status") == "success", ran
        undo_in_window(screen)
        time.sleep(1.0)
        (profile.outside / "report.json.undone").write_text("")
        data = profile.report(gimp)
    finally:
        if gimp.poll() is None:
            os.killpg(gimp.pid, signal.SIGKILL)
            gimp.wait()
    n = len(data["stack_before"])
    assert len(data["stack_after"]) == 2 * n, data["stack_after"]
    assert not any(name == "NoiseBrush preview" for name, *_ in data["stack_after"])
    assert data["stack_after_undo"] == data["stack_before"]
