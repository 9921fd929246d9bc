"""The layered .ora files NoiseBrush Studio saves open in a real Krita 5 with their layers intact
(kritarunner, offscreen): names, order, offsets, opacity, visibility, lock and pixels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from noisebrush.gui.layer import Layer
from noisebrush.gui.ora import write_ora

pytestmark = pytest.mark.host
HOSTS = Path(__file__).resolve().parent
W, H = 64, 48


def _layers() -> list[Layer]:
    rng = np.random.default_rng(11)
    paint = rng.integers(0, 256, (16, 20, 4), dtype=np.uint8)
    paint[..., 3] = rng.integers(1, 256, (16, 20))  # translucent, but no pixel fully clear: exact bounds
    edge = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    edge[..., 3] = 255
    return [
        Layer("Background", np.full((H, W, 4), (250, 246, 238, 255), np.uint8)),
        Layer("Paint \u00e9 & <x>", paint, 7, 11, 0.6),
        Layer("Hidden", edge, -4, -3, 0.25, visible=False, locked=True),  # hangs over the canvas edge
    ]


def _krita_env(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(HOSTS),
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    # Krita's embedded Python takes its prefix from the `python3` on PATH: inside our virtualenv it
    # would miss the system PyQt5 that `import krita` needs.
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(sys.prefix)
    )
    return env


def test_krita_opens_a_studio_ora_with_its_layers_intact(tmp_path: Path) -> None:
    if shutil.which("kritarunner") is None:
        pytest.skip(
            "kritarunner not found: install Krita 5 (.ci/hosts.sh or apt-get install krita python3-pyqt5)"
        )
    layers = _layers()
    path = tmp_path / "studio.ora"
    write_ora(path, W, H, layers)
    report_path = tmp_path / "report.json"
    home = tmp_path / "home"
    home.mkdir()
    args = ["kritarunner", "-s", "krita_ora_reader", "-f", "main", str(path), str(report_path)]
    proc = subprocess.run(args, env=_krita_env(home), capture_output=True, text=True, timeout=600)
    if not report_path.exists():
        raise AssertionError(
            f"Krita wrote no report (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    report = json.loads(report_path.read_text())
    assert report["ok"], report.get("error")
    assert report["size"] == [W, H] and report["color"] == ["RGBA", "U8"]
    got = report["layers"]
    assert [la["name"] for la in got] == [la.name for la in layers]  # bottom first, names intact
    for want, la in zip(layers, got, strict=True):
        assert la["type"] == "paintlayer"
        assert abs(la["opacity"] - want.opacity * 255) <= 1, la["name"]
        assert (la["visible"], la["locked"]) == (want.visible, want.locked), la["name"]
        assert la["bounds"] == list(want.rect), la["name"]
        pixels = np.frombuffer(bytes.fromhex(la["rgba"]), np.uint8).reshape(want.height, want.width, 4)
        assert np.array_equal(pixels, want.pixels), la["name"]
