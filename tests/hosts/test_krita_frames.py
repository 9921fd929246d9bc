"""The frames of an animated paint layer through one batch job, in a full Krita 5 window under Xvfb.

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
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "kritarc").write_text(
        "[python]\nenable_noisebrush_krita=true\nenable_nbframes=true\n"
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


def test_every_keyframe_is_edited_in_one_batch_job_into_one_new_layer(frames: dict[str, Any]) -> None:
    assert frames["source_keyframes"] == [0, 4, 8]
    assert frames["submitted"] == ["batch"], "the frames were not sent as one batch job"
    layers = [n for n in frames["layers"] if n not in ("Background", "Selection Mask")]
    assert frames["name"] == "Walk (SDEdit)" and layers == ["Walk", "Walk (SDEdit)"]  # right above it
    assert frames["result_keyframes"] == [0, 4, 8]  # the copy keeps the animation's timing
    for t, (source_intact, outside_equal, changed_inside) in frames["frames"].items():
        assert source_intact, f"frame {t} of the source layer changed"
        assert outside_equal, f"frame {t}: pixels outside the selection changed"
        assert changed_inside > 0, f"frame {t}: nothing changed inside the selection"
    assert frames["progress_frames"] == [0, 1, 2]  # progress named each frame of the batch
    assert frames["current_time"] == 2  # the time the painter was at comes back
