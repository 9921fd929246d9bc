"""The frames of an animated paint layer through one batch job, in a full Krita 5 window under Xvfb: by
the painter's Filter > NoiseBrush > SDEdit Every Keyframe (its action triggered by name, nothing done in
the docker), then by a script's generate_frames over the same layer.

Krita 5.1.5's Python API reads a keyframe's pixels (Node.pixelDataAtTime) and writes the current time's
keyframe (Document.setCurrentTime + Node.setPixelData), and Node.duplicate keeps the keyframes; it has no
call that makes a keyframe, so the probe makes them with the timeline's add_blank_frame action, which only
the full window has (docs/HOSTS.md, "Animation frames").
"""

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
PROBE = Path(__file__).resolve().parent / "krita_frames_probe"


@pytest.fixture(scope="module")
def frames(
    tmp_path_factory: pytest.TempPathFactory, host_server: tuple[str, str, int], submitted: list[str]
) -> dict[str, Any]:
    if shutil.which("krita") is None or shutil.which("xvfb-run") is None:
        pytest.skip("needs krita and xvfb-run (.ci/hosts.sh or apt-get install krita python3-pyqt5 xvfb)")
    url, token, steps = host_server
    tmp_path = tmp_path_factory.mktemp("krita-frames")
    home = tmp_path / "home"
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    install_krita(pykrita)
    shutil.copytree(PROBE / "nbframes", pykrita / "nbframes")
    shutil.copy(PROBE / "nbframes.desktop", pykrita / "nbframes.desktop")
    (home / ".config" / "noisebrush").mkdir(parents=True)
    (home / ".config" / "noisebrush" / "token").write_text(token)  # as `noisebrush serve` leaves it
    # the docker's saved settings, which the action uses; previews on, as a painter has them
    settings = json.dumps({"kind": "ledits", "strength": 0.6, "steps": steps, "seed": 1, "previews": True})
    (home / ".config" / "kritarc").write_text(
        "[python]\nenable_noisebrush_krita=true\nenable_nbframes=true\n\n"
        f"[noisebrush]\nurl={url}\nsettings={settings}\n"
    )
    out = tmp_path / "frames.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "NB_PROBE_OUT": str(out),
        "NB_URL": url,
        "NB_TOKEN": token,
        "NB_STEPS": str(steps),
    }
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("NOISEBRUSH_TOKEN_FILE", None)
    before = len(submitted)
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
    data["submitted"] = submitted[before:]
    return data


def _check_frames(run: dict[str, Any]) -> None:
    assert run["name"] == "Walk (SDEdit)"
    assert run["result_keyframes"] == [0, 4, 8]  # the copy keeps the animation's timing
    for t, (source_intact, outside_equal, changed_inside) in run["frames"].items():
        assert source_intact, f"frame {t} of the source layer changed"
        assert outside_equal, f"frame {t}: pixels outside the selection changed"
        assert changed_inside > 0, f"frame {t}: nothing changed inside the selection"
    assert run["current_time"] == 2  # the time the painter was at comes back


def _layers(run: dict[str, Any]) -> list[str]:
    return [n for n in run["layers"] if n not in ("Background", "Selection Mask")]


def test_every_keyframe_action_runs_one_batch_job_off_the_gui_thread_into_one_new_layer(
    frames: dict[str, Any],
) -> None:
    assert frames["source_keyframes"] == [0, 4, 8]
    run = frames["action"]
    assert run["started"], f"the action did not start a run: {run['status']!r}"
    assert _layers({"layers": run["layers_while_running"]}) == ["Walk"]  # nothing written before the results
    assert run["trigger_s"] < 2, "the action blocked Krita's GUI thread"
    assert run["status"] == "Wrote 3 keyframe(s) into 'Walk (SDEdit)'.", run["status"]
    assert _layers(run) == ["Walk", "Walk (SDEdit)"]  # right above its source
    _check_frames(run)
    for k in (1, 2, 3):  # Krita's status bar named each frame of the batch
        assert any(f"NoiseBrush SDEdit: frame {k} of 3, step" in m for m in run["messages"]), run["messages"]
    assert frames["submitted"][0] == "batch", "the frames were not sent as one batch job"


def test_generate_frames_from_a_script_gives_the_same_frames(frames: dict[str, Any]) -> None:
    run = frames["script"]
    assert frames["submitted"] == ["batch", "batch"], frames["submitted"]
    assert _layers(run) == ["Walk", "Walk (SDEdit)", "Walk (SDEdit)"]
    _check_frames(run)
    assert run["progress_frames"] == [0, 1, 2]  # progress named each frame of the batch
    assert all(run["same_as_action"].values()), run["same_as_action"]  # same settings, same seed
