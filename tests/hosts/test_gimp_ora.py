"""The layered .ora files NoiseBrush Studio saves open in a real GIMP 3 (its own OpenRaster loader, in the
Debian trixie root from .ci/hosts.sh) with names, order, offsets, opacity, visibility and pixels intact."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.ora import read_ora, write_ora
from tests.hosts.blend_doc import BLEND_H, BLEND_W, blend_layers, studio_composite, worst_by_mode
from tests.hosts.test_krita_ora import H, W, _layers

pytestmark = pytest.mark.host
HOSTS = Path(__file__).resolve().parent


def _gimp_report(
    gimp_root: Path, layers: list[Layer], width: int, height: int, resaved: Path | None = None
) -> dict[str, Any]:
    """What gimp_ora_reader found in a Studio .ora of `layers` (and, given `resaved`, a copy of GIMP's
    own save of it there)."""
    work = Path("/tmp") / f"nb-ora-{uuid.uuid4().hex[:8]}"  # inside the root
    inside = gimp_root / work.relative_to("/")
    (inside / "home").mkdir(parents=True)
    try:
        write_ora(inside / "studio.ora", width, height, layers)
        shutil.copy(HOSTS / "gimp_ora_reader.py", inside / "reader.py")
        cmd = [
            "chroot",
            str(gimp_root),
            "env",
            f"HOME={work / 'home'}",
            f"NB_ORA={work / 'studio.ora'}",
            f"NB_REPORT={work / 'report.json'}",
            f"NB_RESAVED={work / 'gimp.ora' if resaved is not None else ''}",
            "gimp-console-3.0",
            "-i",
            "--batch-interpreter=python-fu-eval",
            "-b",
            f"exec(open('{work / 'reader.py'}').read())",
            "--quit",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if not (inside / "report.json").exists():
            raise AssertionError(
                f"GIMP wrote no report (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        report: dict[str, Any] = json.loads((inside / "report.json").read_text())
        if resaved is not None and (inside / "gimp.ora").exists():
            shutil.copy(inside / "gimp.ora", resaved)
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    assert report["ok"], report.get("error")
    return report


def test_gimp_opens_a_studio_ora_with_its_layers_intact(gimp_root: Path) -> None:
    layers = _layers()
    report = _gimp_report(gimp_root, layers, W, H)
    assert report["size"] == [W, H]
    got = report["layers"]
    assert [la["name"] for la in got] == [la.name for la in layers]  # bottom first, names intact
    for want, la in zip(layers, got, strict=True):
        assert abs(la["opacity"] - want.opacity * 100) <= 0.5, la["name"]
        assert la["visible"] == want.visible, la["name"]
        assert la["bounds"] == list(want.rect), la["name"]
        pixels = np.frombuffer(bytes.fromhex(la["rgba"]), np.uint8).reshape(want.height, want.width, 4)
        assert np.array_equal(pixels, want.pixels), la["name"]


# GIMP's layer modes (layer.get_mode(): Gimp.LayerMode value and nick; the non-legacy ones) for the
# OpenRaster modes the Studio writes.
GIMP_MODES = {
    "svg:multiply": (30, "multiply"),
    "svg:screen": (31, "screen"),
    "svg:overlay": (23, "overlay"),
    "svg:darken": (35, "darken-only"),
    "svg:lighten": (36, "lighten-only"),
    "svg:color-dodge": (42, "dodge"),
    "svg:color-burn": (43, "burn"),
    "svg:hard-light": (44, "hardlight"),
    "svg:soft-light": (45, "softlight"),
    "svg:difference": (32, "difference"),
}
# Modes whose formula GIMP shares with the Studio (W3C Compositing), on sRGB values.
SAME_FORMULA = ["svg:multiply", "svg:screen", "svg:overlay", "svg:darken", "svg:lighten"]
SAME_FORMULA += ["svg:hard-light", "svg:difference"]


def test_gimp_opens_studio_blend_modes_as_the_same_modes(gimp_root: Path, tmp_path: Path) -> None:
    """Each layer's blend mode opens in GIMP 3 as the same layer mode, and GIMP's own .ora save of the
    document reads back in the Studio with the same modes.

    The pixels: GIMP's default ("auto") blend and composite spaces for these modes are linear light, the
    Studio (like Krita, MyPaint and the W3C spec) blends the stored sRGB values, so GIMP's flattened image
    differs by up to 68/255 (measured: multiply 68, screen 59, overlay 24, darken 63, lighten 50,
    dodge 208, burn 126, hard light 62, soft light 20, difference 64). With the spaces set to perceptual
    the modes in SAME_FORMULA match within 3/255 (measured: 0 for each). GIMP defines the others
    differently (measured in perceptual space: dodge 146, burn 126, soft light 21), so they are not
    asserted; exclusion is not offered (no OpenRaster name; GIMP opened "svg:exclusion" as Normal)."""
    layers = blend_layers()
    resaved = tmp_path / "gimp.ora"
    report = _gimp_report(gimp_root, layers, BLEND_W, BLEND_H, resaved)
    got = {la["name"]: (la["mode"], la["mode_name"]) for la in report["layers"]}
    assert {op: got[op.removeprefix("svg:")] for op in GIMP_MODES} == GIMP_MODES
    want = studio_composite(layers)
    linear, perceptual = (
        worst_by_mode(np.frombuffer(bytes.fromhex(report[k]), np.uint8).reshape(BLEND_H, BLEND_W, 4), want)
        for k in ("flattened", "flattened_perceptual")
    )
    print("GIMP flattened vs Studio composite, largest channel difference by mode:")
    print("  default (linear) spaces:", linear)
    print("  perceptual spaces:", perceptual)
    assert {op: perceptual[op] for op in SAME_FORMULA if perceptual[op] > 3} == {}
    assert report["resaved"] and resaved.exists()
    back = {la.name: la.blend for la in read_ora(resaved)[2]}
    assert {op: back[op.removeprefix("svg:")] for op in GIMP_MODES} == {op: op for op in GIMP_MODES}
