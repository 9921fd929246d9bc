"""`noisebrush install-plugin krita` into a fresh profile, then a full Krita 5 window (under Xvfb), driven
by the probe plugin in krita_probe/: Filter > NoiseBrush holds SDEdit, LEDITS, SDEdit Every Keyframe and
Settings...; its SDEdit action, triggered by name with nothing done in the docker, makes the result layer
from the saved settings; and one Edit > Undo takes a whole generation back, a two-layer batch (its results
in one group) included, with no preview layer coming back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from noisebrush.core.cli.install_plugin import install_krita

pytestmark = pytest.mark.host
PROBE = Path(__file__).resolve().parent / "krita_probe"
PREVIEW = "NoiseBrush preview"


@pytest.fixture(scope="module")
def probe(
    tmp_path_factory: pytest.TempPathFactory, host_server: tuple[str, str, int], submitted: list[str]
) -> dict[str, Any]:
    if shutil.which("krita") is None or shutil.which("xvfb-run") is None:
        pytest.skip("needs krita and xvfb-run (.ci/hosts.sh or apt-get install krita python3-pyqt5 xvfb)")
    url, token, steps = host_server
    before = len(submitted)
    tmp_path = tmp_path_factory.mktemp("krita-window")
    home = tmp_path / "home"
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    install_krita(pykrita)
    shutil.copytree(PROBE / "nbprobe", pykrita / "nbprobe")
    shutil.copy(PROBE / "nbprobe.desktop", pykrita / "nbprobe.desktop")
    (home / ".config" / "noisebrush").mkdir(parents=True)
    (home / ".config" / "noisebrush" / "token").write_text(token)  # as `noisebrush serve` leaves it
    settings = json.dumps({"kind": "sdedit", "strength": 0.6, "steps": steps, "seed": 1})
    (home / ".config" / "kritarc").write_text(
        "[python]\nenable_noisebrush_krita=true\nenable_nbprobe=true\n\n"
        f"[noisebrush]\nurl={url}\nsettings={settings}\n"
    )
    out = tmp_path / "probe.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "NB_PROBE_OUT": str(out),
    }
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("NOISEBRUSH_TOKEN_FILE", None)
    # Own session, so a timeout takes Krita and Xvfb down too, not just xvfb-run.
    proc = subprocess.Popen(
        ["xvfb-run", "-a", "krita", "--nosplash"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
    if not out.exists():
        raise AssertionError(f"the probe wrote nothing (rc {proc.returncode}):\n{stderr[-3000:]}")
    data = json.loads(out.read_text())
    assert "error" not in data, data["error"]
    data["submitted"] = submitted[before:]  # the kind of every job the window sent, in order
    return data


def _names(stack: list[list[str]]) -> list[str]:
    return [name for name, _ in stack if name not in ("Background", "Selection Mask")]


def test_filter_menu_has_a_noisebrush_submenu(probe: dict[str, Any]) -> None:
    assert probe["menu"] == [
        ["SDEdit", "noisebrush_sdedit"],
        ["LEDITS", "noisebrush_ledits"],
        ["SDEdit Every Keyframe", "noisebrush_sdedit_frames"],
        ["Settings...", "noisebrush_settings"],
    ]


def test_filter_action_alone_makes_the_result(probe: dict[str, Any]) -> None:
    run = probe["single"]
    assert run["started"], "the action did not start a generation"
    assert run["status"] == "Added 1 layer(s).", run["status"]
    assert _names(run["after"]) == ["Sky", "Sky (SDEdit)"]
    outside_equal, changed_inside = run["results"]["Sky"]
    assert outside_equal, "pixels outside the selection changed"
    assert changed_inside > 0, "nothing changed inside the selection"


def test_one_undo_takes_a_generation_back(probe: dict[str, Any]) -> None:
    run = probe["single"]
    assert run["after_one_undo"] == run["before"]  # names, count and pixels
    assert PREVIEW not in [n for n, _ in run["after_one_undo"]]


def test_one_undo_takes_a_two_layer_batch_back(probe: dict[str, Any]) -> None:
    assert probe["selected"] == ["A", "B"]
    run = probe["batch"]
    assert run["status"] == "Added 2 layer(s).", run["status"]
    # one group above the topmost source holds the results (one node added: one undo step)
    assert _names(run["after"]) == ["A", "B", "NoiseBrush SDEdit", "A (SDEdit)", "B (SDEdit)"]
    assert all(equal and changed for equal, changed in (run["results"]["A"], run["results"]["B"]))
    assert run["after_one_undo"] == run["before"]
    assert probe["submitted"].count("batch") == 1, probe["submitted"]  # both layers went as one batch job


def test_live_follows_strokes_and_apply_is_one_undo_step(probe: dict[str, Any]) -> None:
    """Live on, strokes drawn through the API: the preview layer follows each; Apply keeps it as one layer
    that one edit_undo removes. Prints what one poll costs and stroke-end-to-preview latencies."""
    live = probe["live"]
    assert live["live_on"], live["status_on"]
    lat = sorted(live["latencies"])
    assert len(lat) == 4, live
    print(
        f"Krita Live: poll {live['poll_ms_region']:.2f} ms (384x320 region), stroke end to preview layer "
        f"p50 {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s over {len(lat)} strokes"
    )
    names = [name for name, _ in live["before_apply"]]
    assert PREVIEW in names  # the live preview layer shows the result
    assert [n for n, _ in live["after_apply"]] == [n if n != PREVIEW else "Live (SDEdit)" for n in names]
    assert live["after_one_undo"] == [e for e in live["before_apply"] if e[0] != PREVIEW]
    assert live["history"] >= 1
