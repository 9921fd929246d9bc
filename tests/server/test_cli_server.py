"""`noisebrush edit --server`: a real CLI process against a live server on a loopback socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from nb_live import TOKEN, FakeEngine, live_server, png_b64
from PIL import Image

from noisebrush.core.cli.main import main

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "resources" / "models" / "default"
# Runs the command line in a fresh interpreter and says whether it imported torch: with --server it must not.
CHILD = (
    "import sys\n"
    "from noisebrush.core.cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def cli(argv: list[str], token_file: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOISEBRUSH_TOKEN_FILE": str(token_file)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True, timeout=300, **kw
    )


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def _guide(path: Path, h: int, w: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLED.is_dir(), reason="the bundled prior is not in this checkout")
def test_server_edit_is_the_local_edit_byte_for_byte(tmp_path: Path, token_file: Path) -> None:
    """The same guides, mask and options give the same files through the server as in-process, for a
    single-stage size and a two-stage one, with variations; the CLI process never imports torch."""
    from noisebrush.core.engine.engine import Engine

    guides = [_guide(tmp_path / "small.png", 72, 96, 1), _guide(tmp_path / "wide.png", 200, 256, 2)]
    mask = np.zeros((200, 256), np.uint8)
    mask[40:160, 30:220] = 255
    mask[60:140, 60:200] = 128  # grey: a soft selection travels as its 8-bit values
    Image.fromarray(mask).save(tmp_path / "mask.png")
    common = ["--steps", "8", "--strength", "0.6", "--variations", "2", "--seed", "3", "--device", "cpu"]
    with_mask = ["--mask", str(tmp_path / "mask.png")]
    for guide, extra in ((guides[0], []), (guides[1], with_mask)):
        assert main(["edit", str(guide), "-o", str(tmp_path / "local"), *common, *extra]) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOISEBRUSH_MODELS", str(tmp_path))
        with live_server(Engine(), preview_interval=0.0) as (url, _app):
            for guide, extra in ((guides[0], []), (guides[1], with_mask)):
                out = tmp_path / "remote"
                argv = ["edit", str(guide), "-o", str(out), *common, *extra, "--server", url]
                argv += ["--previews", str(tmp_path / "previews" / guide.stem)]
                done = cli(argv, token_file)
                assert done.returncode == 0, done.stderr
                assert "no torch" in done.stderr
                assert sorted(os.listdir(tmp_path / "previews" / guide.stem)), "no preview was written"
    for guide in guides:
        for v in (0, 1):
            name = f"{guide.stem}-v{v}.png"
            local = np.asarray(Image.open(tmp_path / "local" / name))
            remote = np.asarray(Image.open(tmp_path / "remote" / name))
            assert local.shape == remote.shape and np.array_equal(local, remote), name


def test_server_edit_errors_are_one_line_and_write_nothing(tmp_path: Path, token_file: Path) -> None:
    guide = _guide(tmp_path / "g.png", 32, 48)
    out = tmp_path / "out.png"
    with live_server(FakeEngine()) as (url, _app):
        failures = {
            "cannot reach the NoiseBrush server": ["--server", "http://127.0.0.1:9"],  # nothing listens there
            "not valid": ["--server", "127.0.0.1:7865"],
            "the token is wrong": ["--server", url],
            "fake engine exploded": ["--server", url, "--prompt", "explode"],
            "fake engine rejects": ["--server", url, "--prompt", "reject"],
            "--memory-budget is the server's own": ["--server", url, "--memory-budget", "1G"],
        }
        for expected, extra in failures.items():
            token = token_file
            if expected == "the token is wrong":
                token = tmp_path / "other-token"
                token.write_text("x" * 32)
            done = cli(["edit", str(guide), "-o", str(out), *extra], token)
            assert done.returncode == 2, (expected, done.stderr)
            lines = [ln for ln in done.stderr.splitlines() if ln.startswith("noisebrush:")]
            assert len(lines) == 1 and expected in lines[0], (expected, done.stderr)
            assert "Traceback" not in done.stderr
            assert not out.exists(), expected
        ok = cli(["edit", str(guide), "-o", str(out), "--server", url], token_file)
        assert ok.returncode == 0, ok.stderr
        assert np.array_equal(np.asarray(Image.open(out)), 255 - np.asarray(Image.open(guide)))


def test_ctrl_c_cancels_the_server_job(tmp_path: Path, token_file: Path) -> None:
    """Interrupting the command stops its job on the server: the next job starts at once, not after it."""
    guide = _guide(tmp_path / "g.png", 32, 48)
    engine = FakeEngine(steps=100, delay=0.05)  # a 5 s job
    with live_server(engine) as (url, _app):
        env = {**os.environ, "NOISEBRUSH_TOKEN_FILE": str(token_file)}
        argv = [
            sys.executable,
            "-c",
            CHILD,
            "edit",
            str(guide),
            "-o",
            str(tmp_path / "o.png"),
            "--server",
            url,
        ]
        proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not engine.calls:
            assert time.monotonic() < deadline and proc.poll() is None, "the job never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "cancelled; nothing was written" in err
        assert not (tmp_path / "o.png").exists()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
            start = time.monotonic()
            job = c.post("/v1/jobs", json={"kind": "sdedit", "guide": png_b64(np.zeros((8, 8, 3), np.uint8))})
            assert job.status_code == 201, job.text
            while c.get(f"/v1/jobs/{job.json()['id']}").json()["status"] == "queued":
                assert time.monotonic() - start < 2.0, "the interrupted job still held the queue"
                time.sleep(0.02)


def test_model_paths_are_sent_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server resolves paths in its own folders, not in the CLI's working folder: a model, ControlNet or
    LoRA given as an existing relative path is sent absolute; a model name is sent as it is."""
    from noisebrush.core.cli.remote import body
    from noisebrush.core.engine.requests import Lora, SDEditRequest

    (tmp_path / "mine").mkdir()
    (tmp_path / "lora.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    guide = np.zeros((8, 8, 3), np.uint8)
    loras = (Lora("lora.safetensors", 0.5), Lora("elsewhere.safetensors"))
    sent = body(SDEditRequest(guide=guide, model="mine", controlnet="mine", loras=loras))
    assert sent["model"] == sent["controlnet"] == str(tmp_path / "mine")
    assert sent["loras"] == [[str(tmp_path / "lora.safetensors"), 0.5], ["elsewhere.safetensors", 1.0]]
    assert body(SDEditRequest(guide=guide))["model"] == "default"
