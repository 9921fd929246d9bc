"""The command line as users meet it: exit codes, one-line errors, no partial files, previews."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisebrush.core.cli.main import main
from noisebrush.core.errors import Cancelled
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
    from noisebrush.core.engine import engine as engine_mod
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
        "--work-size",  # one stage: 4 steps, so 4 previews (the plan's stages are tests/test_plan.py's)
        "0",
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
        "noisebrush.core.cli.main",
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


# --- never a traceback: every failure is one `noisebrush:` line and exit 2, before any work where it can be


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisebrush: "), err
    return lines[0]


def error_after_progress(err: str) -> str:
    """A failure during the steps: the progress bar's lines, then one error line of its own."""
    lines = [line for line in err.strip().splitlines() if "step" not in line or "noisebrush" in line]
    return one_error_line("\n".join(lines))


@pytest.fixture
def no_work(monkeypatch) -> list[str]:
    """Records any model work a command starts; the checks under test must refuse before it."""
    from noisebrush.core.engine import engine as engine_mod

    started: list[str] = []

    class NoEngine:
        def __init__(self, *args, **kwargs) -> None:
            started.append("engine")

        def prior(self, *args, **kwargs):
            raise Cancelled()

    monkeypatch.setattr(engine_mod, "Engine", NoEngine)
    return started


@pytest.fixture
def read_only(monkeypatch):
    """Makes folders read-only. Root ignores permission bits, so under root new files there are also
    refused as a read-only mount would refuse them."""
    import errno
    import os
    import tempfile

    folders: list[Path] = []
    mkstemp = tempfile.mkstemp

    def refusing_mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() in folders:
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return mkstemp(*args, dir=dir, **kwargs)

    def make(folder: Path) -> Path:
        folder.chmod(0o555)
        folders.append(folder.resolve())
        if os.geteuid() == 0:
            monkeypatch.setattr(tempfile, "mkstemp", refusing_mkstemp)
        return folder

    yield make
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", ["edit", "ledits"])
@pytest.mark.parametrize("where", ["read-only folder", "missing folder", "folder is a file"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    files, capsys, no_work, read_only, command, where
):
    tmp, out = files
    (tmp / "a-file").write_text("x")
    target = {
        "read-only folder": read_only(out) / "result.png",
        "missing folder": tmp / "nowhere" / "result.png",
        "folder is a file": tmp / "a-file" / "result.png",
    }[where]
    extra = ["--add", "snow"] if command == "ledits" else []
    code, err = run(capsys, command, tmp / "guide.png", "-o", target, "--steps", "2", *extra)
    line = one_error_line(err)
    assert code == 2 and line.startswith("noisebrush: error: ") and str(target.parent) in line
    assert no_work == [], "the output is checked before the model loads"
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("flag", ["--previews", "--out"])
def test_other_output_folders_are_checked_before_any_work(files, capsys, no_work, read_only, flag):
    tmp, out = files
    locked = read_only(out)
    if flag == "--previews":
        argv = ["edit", tmp / "guide.png", "-o", tmp / "r.png", "--previews", locked / "steps"]
    else:
        argv = ["eval", "--out", locked / "report", "--guides", "1"]
    code, err = run(capsys, *argv)
    assert code == 2 and "is not writable" in one_error_line(err)
    assert no_work == [] and not (tmp / "r.png").exists()


def test_train_checks_its_run_folder_before_training(tmp_path, capsys, read_only):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    code, err = run(capsys, "train", "--out", locked / "run", "--steps", "1", "--no-progress")
    assert code == 2 and "--out folder" in one_error_line(err) and "is not writable" in err
    assert list(locked.iterdir()) == []


def test_an_output_that_is_a_folder_gets_the_image_inside_it(files, capsys, ddpm_model):
    tmp, out = files
    folder = out / "result.png"  # a folder, whatever its name says
    folder.mkdir()
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", folder, "--model", ddpm_model, "--steps", "2")
    assert code == 0, err
    assert Image.open(folder / "guide.png").size == (56, 40)


def test_a_file_system_error_mid_run_is_one_line_and_leaves_no_file(files, capsys, ddpm_model, monkeypatch):
    import errno

    from noisebrush.core.cli import run as cli_run

    tmp, out = files

    def disk_full(path, image):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cli_run, "save_image", disk_full)
    code, err = run(
        capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", ddpm_model, "--steps", "2"
    )
    assert code == 2 and "No space left on device" in error_after_progress(err)
    assert list(out.iterdir()) == []


def test_a_bug_is_one_line_that_says_how_to_see_the_traceback(files, capsys, ddpm_model, monkeypatch):
    from noisebrush.core.engine import engine as engine_mod

    tmp, out = files

    def bug(self, req, callback=None):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(engine_mod.Engine, "sdedit", bug)
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", ddpm_model)
    line = error_after_progress(err)
    assert code == 2 and line.startswith("noisebrush: internal error: TypeError: unsupported operand")
    assert "NOISEBRUSH_TRACEBACK=1" in line
    monkeypatch.setenv("NOISEBRUSH_TRACEBACK", "1")
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", ddpm_model)
    assert code == 2 and "Traceback (most recent call last)" in err


def test_ctrl_c_during_the_model_steps_exits_130(files, capsys, ddpm_model, monkeypatch):
    from noisebrush.core.engine import engine as engine_mod

    tmp, out = files
    sdedit = engine_mod.Engine.sdedit

    def interrupted_at_step_2(self, req, callback=None):
        def on_step(p):
            if p.step >= 2:
                raise KeyboardInterrupt
            if callback is not None:
                callback(p)

        return sdedit(self, req, on_step)

    monkeypatch.setattr(engine_mod.Engine, "sdedit", interrupted_at_step_2)
    code, err = run(
        capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--model", ddpm_model, "--steps", "8"
    )
    assert code == 130 and err.strip().splitlines()[-1] == "noisebrush: cancelled; nothing was written"
    assert list(out.iterdir()) == []


def test_ledits_without_a_concept_is_refused_at_once(files, capsys, no_work):
    tmp, out = files
    code, err = run(capsys, "ledits", tmp / "guide.png", "-o", out / "r.png")
    line = one_error_line(err)
    assert code == 2 and "--add" in line and "--remove" in line
    assert no_work == [] and list(out.iterdir()) == []
    # A target prompt that differs from the source is an edit of its own: it goes on to the model.
    code, err = run(capsys, "ledits", tmp / "guide.png", "-o", out / "r.png", "--target-prompt", "snow")
    assert code == 130 and no_work == ["engine"]


@pytest.mark.parametrize("scale", ["abc", "", "7x", "seven"])
def test_a_concept_scale_that_is_not_a_number_is_named(files, capsys, no_work, scale):
    tmp, out = files
    code, err = run(capsys, "ledits", tmp / "guide.png", "-o", out / "r.png", "--add", f"snow:{scale}")
    line = one_error_line(err)
    assert code == 2 and f"the scale '{scale}' is not a number" in line and "0 to 100" in line
    assert no_work == []


def test_concept_specs_parse_as_before():
    from noisebrush.core.engine.concepts import parse_concept

    snow = parse_concept("snow:7")
    assert (snow.text, snow.scale, snow.remove) == ("snow", 7.0, False)
    assert parse_concept("snow", True).scale is None
    assert parse_concept("-snow").remove and parse_concept("+snow", True).remove is False
    assert parse_concept("style: oil painting").text == "style: oil painting"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--size", "7"], "--size must be a multiple of 8"),
        (["--size", "0"], "--size must be a multiple of 8"),
        (["--channels", "abc"], "--channels must be comma-separated multiples of 16"),
        (["--channels", "32,7"], "--channels must be comma-separated multiples of 16"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--lr", "0"], "--lr must be above 0"),
        (["--data", "/no/such/folder"], "--data must be 'procedural' or a folder"),
        (["--zero-terminal-snr"], "needs --prediction v_prediction"),
    ],
)
def test_train_refuses_bad_flags_on_stderr_before_training(tmp_path, capsys, flags, message):
    code = main(["train", "--out", str(tmp_path / "run"), "--no-progress", *flags])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert message in one_error_line(captured.err)
    assert not (tmp_path / "run").exists()


def test_train_with_a_damaged_saved_config_says_so(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{not json")
    code, err = run(capsys, "train", "--out", tmp_path / "run", "--steps", "1", "--no-progress")
    assert code == 2 and "is not a run's saved config" in one_error_line(err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--strengths", "0.3,abc"], "--strengths must be comma-separated numbers in [0, 1]"),
        (["eval", "--size", "0"], "--size must be at least 1"),
        (["bench", "--threads", "-1"], "--threads must be at least 1"),
        (["bench", "--json", "/no/such/folder/rows.json"], "does not exist"),
    ],
)
def test_eval_and_bench_refuse_bad_numbers_and_paths(capsys, argv, message):
    code, err = run(capsys, *argv)
    assert code == 2 and message in one_error_line(err)


def test_an_image_in_a_mode_that_cannot_be_converted_is_bad_input(files, capsys, no_work):
    tmp, out = files
    Image.fromarray(np.full((40, 56, 3), 128, np.uint8)).convert("LAB").save(tmp / "lab.tif")
    code, err = run(capsys, "edit", tmp / "guide.png", "-o", out / "r.png", "--mask", tmp / "lab.tif")
    line = one_error_line(err)
    assert code == 2 and line.startswith("noisebrush: error: mask") and "mode LAB" in line
    assert no_work == []


def _unwritable(tmp: Path) -> Path:
    """A folder this process cannot write into, even as root."""
    import os

    if os.geteuid() != 0:
        locked = tmp / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    if not Path("/proc/self").is_dir():
        pytest.skip("needs a folder root cannot write into (Linux /proc)")
    return Path("/proc")


def test_real_process_refuses_an_unwritable_output_with_one_line(files, ddpm_model):
    """The issue's case in a real process: it used to run every step, then print a traceback and exit 1.
    (Train's and ledits' refusals take the same exit path, in-process above; a process costs 20 s here.)"""
    tmp, out = files
    target = _unwritable(tmp) / "r.png"
    cmd = [
        sys.executable,
        "-m",
        "noisebrush.core.cli.main",
        "edit",
        str(tmp / "guide.png"),
        "-o",
        str(target),
    ]
    proc = subprocess.run(
        [*cmd, "--model", str(ddpm_model), "--steps", "2"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_error_line(proc.stderr)
    assert line.startswith(f"noisebrush: error: output folder {target.parent} is not writable"), line


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["edit", "--help"],
        ["edit", "guide.png"],  # no -o
        ["edit", "g.png", "-o", "x.png", "--strength", "half"],
        ["ledits", "--help"],
        ["train", "--size", "abc"],
        ["eval", "--help"],
        ["bench", "--help"],
        ["serve", "--port", "web"],
        ["studio", "--help"],
        ["nonsense"],
    ],
)
def test_help_and_argument_errors_answer_without_loading_torch(argv: list[str]) -> None:
    """Start-up that does not dominate: help, the version and every argument error come from the parser
    alone, so they answer in a fraction of a second instead of the seconds torch and diffusers take to load.
    numpy, Pillow and Qt stay out too: together they are most of what is left (0.3 s of a 0.6 s start)."""
    probe = (
        "import sys\n"
        "from noisebrush.core.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'numpy', 'PIL', 'PyQt6') if m in sys.modules)\n"
        "print('loaded:', ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "loaded:", out.stdout + out.stderr


@pytest.mark.parametrize(
    "size, extra, message",
    [
        ((32, 32), [], "a control image needs ControlNet weights"),
        ((16, 24), ["--controlnet", "cn"], "control image is 24x16 but the guide is 32x32"),
    ],
)
def test_a_control_image_is_checked_before_any_model_loads(tmp_path, capsys, size, extra, message):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "guide.png")
    Image.fromarray(np.zeros((*size, 3), np.uint8)).save(tmp_path / "edges.png")
    code = main(
        [
            "edit",
            str(tmp_path / "guide.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--control-image",
            str(tmp_path / "edges.png"),
            *extra,
        ]
    )
    assert code == 2 and message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()
