"""The layered .ora files NoiseBrush Studio saves open in a real GIMP 3 (its own OpenRaster loader, in the
Debian trixie root from .ci/hosts.sh) with names, order, offsets, opacity, visibility and pixels intact."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from noisebrush.gui.ora import write_ora
from tests.hosts.test_krita_ora import H, W, _layers

pytestmark = pytest.mark.host
HOSTS = Path(__file__).resolve().parent


def test_gimp_opens_a_studio_ora_with_its_layers_intact(gimp_root: Path) -> None:
    layers = _layers()
    work = Path("/tmp") / f"nb-ora-{uuid.uuid4().hex[:8]}"  # inside the root
    inside = gimp_root / work.relative_to("/")
    (inside / "home").mkdir(parents=True)
    try:
        write_ora(inside / "studio.ora", W, H, layers)
        shutil.copy(HOSTS / "gimp_ora_reader.py", inside / "reader.py")
        cmd = [
            "chroot",
            str(gimp_root),
            "env",
            f"HOME={work / 'home'}",
            f"NB_ORA={work / 'studio.ora'}",
            f"NB_REPORT={work / 'report.json'}",
            "gimp-console-3.0",
            "-i",
            "--batch-interpreter=python-fu-eval",
            "-b",
            f"exec(open('{work / 'reader.py'}').read())",
            "--quit",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if not (inside / "report.json").exists():
            raise AssertionError(
                f"GIMP wrote no report (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        report = json.loads((inside / "report.json").read_text())
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    assert report["ok"], report.get("error")
    assert report["size"] == [W, H]
    got = report["layers"]
    assert [la["name"] for la in got] == [la.name for la in layers]  # bottom first, names intact
    for want, la in zip(layers, got, strict=True):
        assert abs(la["opacity"] - want.opacity * 100) <= 0.5, la["name"]
        assert la["visible"] == want.visible, la["name"]
        assert la["bounds"] == list(want.rect), la["name"]
        pixels = np.frombuffer(bytes.fromhex(la["rgba"]), np.uint8).reshape(want.height, want.width, 4)
        assert np.array_equal(pixels, want.pixels), la["name"]
