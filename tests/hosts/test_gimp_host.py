"""The GIMP plug-in inside a real GIMP 3 (a Debian trixie root from .ci/hosts.sh) against a live server."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from noisebrush.core.install_plugin import install_gimp

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]


def run_gimp(root: Path, server: tuple[str, str, int], scenario: str) -> dict:
    url, token, steps = server
    work = Path("/tmp") / f"nb-{uuid.uuid4().hex[:8]}"  # inside the root
    home = root / work.relative_to("/") / "home"
    install_gimp(home / ".config" / "GIMP" / "3.0" / "plug-ins")
    shutil.copy(REPO / "tests" / "hosts" / "gimp_driver.py", root / work.relative_to("/") / "driver.py")
    report = work / "report.json"
    cmd = [
        "chroot",
        str(root),
        "env",
        f"HOME={work / 'home'}",
        f"NB_URL={url}",
        f"NB_TOKEN={token}",
        f"NB_REPORT={report}",
        f"NB_SCENARIO={scenario}",
        f"NB_STEPS={steps}",
        "gimp-console-3.0",
        "-i",
        "--batch-interpreter=python-fu-eval",
        "-b",
        f"exec(open('{work / 'driver.py'}').read())",
        "--quit",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        host_report = root / report.relative_to("/")
        if not host_report.exists():
            raise AssertionError(
                f"GIMP wrote no report (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        data = json.loads(host_report.read_text())
    finally:
        shutil.rmtree(root / work.relative_to("/"), ignore_errors=True)
    assert data["ok"], data.get("error")
    assert data["status"] == "success", (data["status"], data.get("message"), proc.stderr[-2000:])
    return data


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


def test_gimp_three_layers_give_three_results(gimp_root: Path, host_server: tuple[str, str, int]) -> None:
    data = run_gimp(gimp_root, host_server, "batch")
    assert data["order"] == [
        "Layer 3 (SDEdit)",
        "Layer 3",
        "Layer 2 (SDEdit)",
        "Layer 2",
        "Layer 1 (SDEdit)",
        "Layer 1",
    ]
    assert all(r["outside_equal"] and r["changed_inside"] > 0 for r in data["results"])
