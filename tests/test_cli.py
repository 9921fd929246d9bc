"""The command line as users meet it: exit codes, one-line errors, no partial files, previews."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisebrush.core.cli import main
from tests.test_images import png_header_only


@pytest.fixture
def files(tmp_path, guide, box_mask):
    Image.fromarray(guide).save(tmp_path / "guide.png")
    Image.fromarray((box_mask * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path, out


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def bad_cases(tmp: Path, model: Path):
    (tmp / "text.png").write_text("hello")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp / "whole.png")
    data = (tmp / "whole.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    png_header_only(tmp / "bomb.png", 30000, 30000)
    png_header_only(tmp / "zero.png", 0, 16)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp / "small_mask.png")
    incomplete = tmp / "incomplete"
    incomplete.mkdir()
    (incomplete / "model_index.json").write_text(
        '{"unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", "DDPMScheduler"]}'
    )
    g = tmp / "guide.png"
    return {
        "missing file": ([tmp / "nope.png"], [], "does not exist"),
        "not an image": ([tmp / "text.png"], [], "not an image"),
        "truncated": ([tmp / "cut.png"], [], "truncated"),
        "zero-sized": ([tmp / "zero.png"], [], "empty|not an image"),
        "bomb": ([tmp / "bomb.png"], [], "megapixels are allowed"),
        "mask size": ([g], ["--mask", tmp / "small_mask.png"], "mask is 10x10 but the image is 56x40"),
        "incomplete model": ([g], ["--model", incomplete], "incomplete; missing: unet/, scheduler/"),
        "strength": ([g], ["--strength", "1.5", "--model", model], r"strength must be in \[0, 1\]"),
        "device": ([g], ["--device", "tpu", "--model", model], "unknown device 'tpu'"),
        "bad output": ([g], ["--model", model], None),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not an image",
        "truncated",
        "zero-sized",
        "bomb",
        "mask size",
        "incomplete model",
        "strength",
        "device",
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(files, capsys, ddpm_model, case):
    tmp, out = files
    guides, extra, message = bad_cases(tmp, ddpm_model)[case]
    code, err = run(capsys, "edit", *guides, "-o", out / "result.png", "--steps", "4", *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisebrush: error: "), err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert list(out.iterdir()) == [], "no partial output file"


def test_unknown_model_name(files, capsys):
    tmp, out = files
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", "nobody/nothing")
    assert code == 2 and "never downloads" in err


def test_cancel_leaves_no_output(files, capsys, ddpm_model, monkeypatch):
    from noisebrush.core import engine as engine_mod
    from noisebrush.core.errors import Cancelled

    tmp, out = files

    def cancelled(self, req, callback=None):
        raise Cancelled()

    monkeypatch.setattr(engine_mod.Engine, "sdedit", cancelled)
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", ddpm_model)
    assert code == 130 and list(out.iterdir()) == []


def test_edit_several_guides_with_variations_and_previews(files, capsys, ddpm_model):
    tmp, out = files
    Image.fromarray(np.full((40, 56, 3), 90, np.uint8)).save(tmp / "second.png")
    prev = tmp / "previews"
    code, err = run(
        capsys,
        "edit",
        tmp / "guide.png",
        tmp / "second.png",
        "-o",
        out,
        "--model",
        ddpm_model,
        "--mask",
        tmp / "mask.png",
        "--steps",
        "8",
        "--strength",
        "0.5",
        "--variations",
        "2",
        "--previews",
        prev,
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "guide-v0.png",
        "guide-v1.png",
        "second-v0.png",
        "second-v1.png",
    ]
    assert len(list((prev / "guide").glob("step-*.png"))) == 4
    assert "step" in err  # the tqdm bar


def test_real_process_end_to_end(files, ddpm_model):
    tmp, out = files
    cmd = [
        sys.executable,
        "-m",
        "noisebrush.core.cli",
        "edit",
        str(tmp / "guide.png"),
        "-o",
        str(out / "r.png"),
        "--model",
        str(ddpm_model),
        "--steps",
        "6",
        "--strength",
        "0.5",
        "--seed",
        "3",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out / "r.png").size == (56, 40)
    bad = subprocess.run(cmd[:-2] + ["--strength", "2"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_models_lists_bundled_and_local(capsys, tmp_path, monkeypatch, ddpm_model):
    import shutil

    monkeypatch.setenv("NOISEBRUSH_MODELS", str(tmp_path))
    shutil.copytree(ddpm_model, tmp_path / "church")
    (tmp_path / "model.safetensors").write_bytes(b"0" * 2048)
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "church" in text and "pixel-vp" in text and "model.safetensors" in text and "single-file" in text
