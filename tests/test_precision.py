"""The CPU's bfloat16 path (core/engine/precision.py): chosen at auto only where the CPU has bfloat16 units,
or when asked for; close to float32, unselected pixels bit-identical, reproducible; float32 on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from noisebrush.core.engine import precision
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbugs\t\t: none\n"


@pytest.mark.parametrize(
    ("extra", "expected"), [("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512f", False)]
)
def test_bfloat16_units_are_read_from_cpuinfo(tmp_path, extra, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(FLAGS.format(extra=extra))
    assert precision.cpu_computes_bfloat16(info) is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path):
    assert precision.cpu_computes_bfloat16(tmp_path / "missing") is False


def test_precision_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    assert precision.resolve(None) == "auto"
    monkeypatch.setenv(precision.PRECISION_ENV, "float32")
    assert precision.resolve(None) == "float32"
    assert precision.resolve("auto") == "auto"
    monkeypatch.setenv(precision.PRECISION_ENV, "half")
    with pytest.raises(BadInput, match=r"NOISEBRUSH_PRECISION is 'half'; allowed: auto, float32, bfloat16"):
        Engine()
    with pytest.raises(BadInput, match=r"precision is 'fp8'; allowed: auto, float32, bfloat16"):
        Engine(precision="fp8")


@pytest.mark.parametrize("units", [True, False])
def test_autocast_only_on_a_bfloat16_cpu_at_auto(monkeypatch, units):
    monkeypatch.setattr(precision, "cpu_computes_bfloat16", lambda: units)
    cpu = torch.device("cpu")
    assert precision.autocast_dtype(cpu, "auto") == (torch.bfloat16 if units else None)
    assert precision.autocast_dtype(cpu, "float32") is None
    assert precision.autocast_dtype(cpu, "bfloat16") == torch.bfloat16  # asked for: even where emulated
    for asked in precision.PRECISIONS:  # CUDA priors load in float16 whatever the CPU's precision
        assert precision.autocast_dtype(torch.device("cuda"), asked) is None


@pytest.mark.parametrize("fixture", ["sd_model", "ddpm_model"])
def test_bfloat16_edit_is_close_to_float32_and_keeps_unselected_pixels(request, fixture, guide, box_mask):
    """Whatever this machine's CPU: the bfloat16 path is asked for, then compared with float32."""
    model = request.getfixturevalue(fixture)
    text = {"prompt": "a red barn", "guidance": 3.0} if fixture == "sd_model" else {}
    req = SDEditRequest(
        guide=guide, mask=box_mask, model=str(model), strength=0.6, steps=8, device="cpu", feather=0, **text
    )
    fast = Engine(precision="bfloat16")
    a, b = fast.sdedit(req)[0], fast.sdedit(req)[0]
    assert fast.prior(str(model), "cpu").autocast == torch.bfloat16
    full = Engine(precision="float32")
    exact = full.sdedit(req)[0]
    assert full.prior(str(model), "cpu").autocast is None
    assert np.array_equal(a, b)  # the same seed gives the same image
    assert np.array_equal(a[box_mask == 0], guide[box_mask == 0])
    assert not np.array_equal(a, exact)  # the bfloat16 path really ran
    # Random tiny weights amplify rounding far more than a trained prior (0.23/255 on the bundled one).
    assert np.abs(a.astype(int) - exact).mean() < 12


def test_bundled_prior_in_bfloat16_matches_float32_to_a_level():
    """The trained prior, as users run it: the README's lake guide at 64 px, bfloat16 within 1/255 on average."""
    from noisebrush.core.engine.images import load_image
    from noisebrush.core.engine.tensors import resized

    guide = load_image(ROOT / "resources" / "samples" / "guide_lake.png", "guide")[..., :3]
    small = resized(guide, (64, 64), "area")
    req = SDEditRequest(guide=small, strength=0.5, steps=10, device="cpu")
    fast = Engine(precision="bfloat16").sdedit(req)[0]
    exact = Engine(precision="float32").sdedit(req)[0]
    assert np.abs(fast.astype(int) - exact).mean() < 1.0
