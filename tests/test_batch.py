"""The batch runner in-process: every frame written once and in input order, a killed run resumed, a bad frame
failing alone, the manifest skipping what is done and redoing what changed; inputs from folders, sequences,
.ora layers; masks by name or frame number; shared noise; the `noisebrush batch` command."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from noisebrush.core.batch import runner
from noisebrush.core.batch.inputs import Masks, frames_from
from noisebrush.core.batch.manifest import NAME as MANIFEST
from noisebrush.core.batch.runner import Batch, in_process, run_batch
from noisebrush.core.cli.main import main
from noisebrush.core.errors import BadInput, Cancelled

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frame(i: int, size: int = 16, shift: int = 0) -> np.ndarray:
    """A static sky and field with a square that moves with the frame number."""
    a = np.zeros((size, size, 3), np.uint8)
    a[: size // 2] = (90, 140, 220)
    a[size // 2 :] = (60, 130, 50)
    x = (i * 2 + shift) % (size - 4)
    a[4:8, x : x + 4] = (200, 40, 40)
    return a


def write_sequence(folder: Path, n: int, size: int = 16, broken: tuple[int, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"frame_{i:04d}.png"
        if i in broken:
            path.write_bytes(b"not a png")
        else:
            Image.fromarray(frame(i, size)).save(path)
    return folder / "frame_%04d.png"


class FakeEngine:
    """Inverts the guide, and refuses a frame whose first pixel is 13: what a runner test needs of an engine."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def sdedit(self, req, should_stop=None):
        if should_stop is not None and should_stop():
            raise Cancelled()
        self.calls.append(req.seed)
        if req.guide[0, 0, 0] == 13:
            raise BadInput("this frame is refused")
        return [255 - req.guide[..., :3]]

    def ledits(self, req, should_stop=None):
        self.calls.append(req.seed)
        return req.image[..., :3] // 2


class Writes:
    """Counts every output the runner renames into place."""

    def __init__(self, monkeypatch) -> None:
        self.paths: list[Path] = []
        real = runner.write_atomic

        def counting(path, data):
            self.paths.append(Path(path))
            real(path, data)

        monkeypatch.setattr(runner, "write_atomic", counting)


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


# -- properties over any set of frames, on a stand-in engine -------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 9),
    broken=st.sets(st.integers(0, 8)),
    refused=st.sets(st.integers(0, 8)),
    deleted=st.sets(st.integers(0, 8)),
    changed=st.sets(st.integers(0, 8)),
)
def test_every_frame_once_in_order_and_a_rerun_does_only_what_is_missing(
    tmp_path_factory, monkeypatch, n, broken, refused, deleted, changed
):
    tmp = tmp_path_factory.mktemp("prop")
    broken = {i for i in broken if i < n}
    refused = {i for i in refused if i < n} - broken
    pattern = write_sequence(tmp / "in", n, broken=tuple(broken))
    for i in refused:
        a = frame(i)
        a[0, 0, 0] = 13
        Image.fromarray(a).save(tmp / "in" / f"frame_{i:04d}.png")
    writes = Writes(monkeypatch)
    order: list[tuple[int, str]] = []
    batch = Batch(frames_from(pattern), tmp / "out", {"model": "default"})
    summary = run_batch(batch, in_process(FakeEngine()), lambda r: order.append((r.frame.index, r.status)))

    good = [i for i in range(n) if i not in broken | refused]
    assert [i for i, s in order] == list(range(n))  # every frame reported once, in input order
    assert [p.name for p in writes.paths] == [
        f"frame_{i:04d}.png" for i in good
    ]  # each written once, in order
    assert sorted(name for name, _ in summary.failed) == [f"frame_{i:04d}" for i in sorted(broken | refused)]
    assert all(reason and "\n" not in reason for _, reason in summary.failed)
    for i in good:
        out = np.asarray(Image.open(tmp / "out" / f"frame_{i:04d}.png"))
        assert np.array_equal(out, 255 - frame(i))

    # The user deletes some outputs and repaints some inputs: the rerun does exactly those (and the failed).
    deleted = {i for i in deleted if i in good}
    changed = {i for i in changed if i in good} - deleted
    for i in deleted:
        (tmp / "out" / f"frame_{i:04d}.png").unlink()
    for i in changed:
        Image.fromarray(frame(i, shift=1)).save(tmp / "in" / f"frame_{i:04d}.png")
    writes.paths.clear()
    summary = run_batch(batch, in_process(FakeEngine()), None)
    redo = sorted(deleted | changed)
    assert [p.name for p in writes.paths] == [f"frame_{i:04d}.png" for i in redo]
    assert summary.skipped == [f"frame_{i:04d}" for i in good if i not in deleted | changed]
    assert len(summary.failed) == len(broken | refused)


def test_request_mask_and_output_changes_redo_frames(tmp_path, monkeypatch):
    pattern = write_sequence(tmp_path / "in", 3)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(mask)
    out = tmp_path / "out"
    make = lambda **f: Batch(frames_from(pattern), out, {"model": "default", **f}, masks=Masks(mask))  # noqa: E731
    engine = FakeEngine()
    assert len(run_batch(make(strength=0.5), in_process(engine)).done) == 3
    assert len(run_batch(make(strength=0.5), in_process(engine)).skipped) == 3
    assert len(run_batch(make(strength=0.6), in_process(engine)).done) == 3  # another request: all redone
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(mask)
    assert len(run_batch(make(strength=0.6), in_process(engine)).done) == 3  # another mask: all redone
    (out / "frame_0001.png").write_bytes(b"the user's own file")
    summary = run_batch(make(strength=0.6), in_process(engine))
    assert summary.done == ["frame_0001"]  # an output that is no longer ours is made again
    shared = run_batch(
        Batch(
            frames_from(pattern),
            out,
            {"model": "default", "strength": 0.6, "seed": 5},
            masks=Masks(mask),
            shared_noise=True,
        ),
        in_process(engine),
    )
    assert len(shared.done) == 3 and engine.calls[-3:] == [5, 5, 5]  # one seed for every frame
    entries = json.loads((out / MANIFEST).read_text())["frames"]
    assert [entries[f"frame_{i:04d}"]["seed"] for i in range(3)] == [5, 5, 5]


def test_a_duplicate_outcome_is_written_once_and_ledits_runs_too(tmp_path, monkeypatch):
    pattern = write_sequence(tmp_path / "in", 3)
    writes = Writes(monkeypatch)
    local = in_process(FakeEngine())

    def twice(jobs):  # an executor that hands back every frame twice, as a retried Ray task can
        for outcome in local(jobs):
            yield outcome
            yield outcome

    batch = Batch(frames_from(pattern), tmp_path / "out", {"model": "default"}, operation="ledits")
    summary = run_batch(batch, twice)
    assert summary.done == ["frame_0000", "frame_0001", "frame_0002"]
    assert [p.name for p in writes.paths] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "frame_0001.png")), frame(1) // 2)


def test_a_cancelled_batch_keeps_what_it_finished(tmp_path):
    pattern = write_sequence(tmp_path / "in", 4)
    done: list[str] = []
    batch = Batch(frames_from(pattern), tmp_path / "out", {"model": "default"})
    with pytest.raises(Cancelled):
        run_batch(
            batch,
            in_process(FakeEngine(), should_stop=lambda: len(done) >= 2),
            lambda r: done.append(r.frame.name),
        )
    assert outputs(tmp_path / "out") == ["frame_0000.png", "frame_0001.png"]
    summary = run_batch(batch, in_process(FakeEngine()))
    assert summary.skipped == ["frame_0000", "frame_0001"] and summary.done == ["frame_0002", "frame_0003"]


def test_a_damaged_manifest_is_a_clear_error_and_nothing_is_overwritten(tmp_path):
    pattern = write_sequence(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text("{ not json")
    with pytest.raises(BadInput, match="move it away"):
        run_batch(Batch(frames_from(pattern), out, {"model": "default"}), in_process(FakeEngine()))
    assert outputs(out) == []


# -- inputs ---------------------------------------------------------------------------------------------
def test_folder_order_is_natural_and_masks_match_by_name_or_number(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("shot10.png", "shot2.png", "shot1.jpg"):
        Image.fromarray(frame(0)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    frames = frames_from(folder)
    assert [f.name for f in frames] == ["shot1", "shot2", "shot10"]
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(masks / "shot1.png")  # by name
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(masks / "mask_0002.png")  # by number
    m = Masks(masks)
    assert m.path(frames[0]).name == "shot1.png"
    assert m.path(frames[1]).name == "mask_0002.png"
    with pytest.raises(BadInput, match="no mask"):
        m.path(frames[2])


def test_a_frame_without_its_mask_fails_alone(tmp_path):
    pattern = write_sequence(tmp_path / "in", 3)
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in (0, 2):
        Image.fromarray(np.full((16, 16), 255, np.uint8)).save(masks / f"m{i}.png")
    summary = run_batch(
        Batch(frames_from(pattern), tmp_path / "out", {"model": "default"}, masks=Masks(masks)),
        in_process(FakeEngine()),
    )
    assert summary.done == ["frame_0000", "frame_0002"]
    assert summary.failed[0][0] == "frame_0001" and "no mask" in summary.failed[0][1]


def write_ora(path: Path, layers: list[tuple[str, np.ndarray, tuple[int, int]]], size=(24, 16)) -> None:
    stack = "".join(
        f'<layer name="{name}" src="data/{i}.png" x="{x}" y="{y}"/>'
        for i, (name, _, (x, y)) in enumerate(layers)
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "image/openraster", compress_type=zipfile.ZIP_STORED)
        z.writestr("stack.xml", f'<image w="{size[0]}" h="{size[1]}"><stack>{stack}</stack></image>')
        for i, (_, rgba, _) in enumerate(layers):
            from io import BytesIO

            buf = BytesIO()
            Image.fromarray(rgba, "RGBA").save(buf, "PNG")
            z.writestr(f"data/{i}.png", buf.getvalue())


def test_ora_layers_are_frames_bottom_first_placed_on_the_canvas(tmp_path):
    top = np.full((8, 8, 4), 255, np.uint8)
    bottom = np.zeros((16, 24, 4), np.uint8)
    bottom[..., 3] = 255
    write_ora(tmp_path / "doc.ora", [("Top / ink", top, (4, 2)), ("Paper", bottom, (0, 0))])
    frames = frames_from(tmp_path / "doc.ora")
    assert [f.name for f in frames] == ["000-Paper", "001-Top_ink"]
    _, pixels = frames[1].load()
    assert pixels.shape == (16, 24, 4)
    assert pixels[2:10, 4:12].min() == 255 and pixels[0, 0, 3] == 0
    summary = run_batch(Batch(frames, tmp_path / "out", {"model": "default"}), in_process(FakeEngine()))
    assert summary.done == ["000-Paper", "001-Top_ink"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: t / "missing", "does not exist"),
        (lambda t: (t / "empty").mkdir() or t / "empty", "holds no images"),
        (lambda t: (t / "x.txt").write_text("x") and t / "x.txt", "is a file"),
        (lambda t: (t / "bad.ora").write_text("x") and t / "bad.ora", "OpenRaster"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(BadInput, match=message):
        frames_from(make(tmp_path))


# -- the real engine ------------------------------------------------------------------------------------
def test_shared_noise_keeps_identical_frames_identical(tmp_path, ddpm_model):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(frame(0, 32)).save(folder / f"f{i}.png")  # nothing moves
    fields = {"model": str(ddpm_model), "strength": 0.6, "steps": 10, "device": "cpu"}
    results = {}
    for shared in (True, False):
        out = tmp_path / f"out-{shared}"
        run_batch(Batch(frames_from(folder), out, fields, shared_noise=shared), in_process())
        results[shared] = [np.asarray(Image.open(out / f"f{i}.png")) for i in range(3)]
    assert all(np.array_equal(results[True][0], r) for r in results[True][1:])
    assert not np.array_equal(results[False][0], results[False][1])  # independent noise: they differ


KILLED_DRIVER = """
import sys
from pathlib import Path
from noisebrush.core.batch.inputs import frames_from
from noisebrush.core.batch.runner import Batch, in_process, run_batch
import torch
torch.set_num_threads(1)
batch = Batch(frames_from(Path(sys.argv[1])), Path(sys.argv[2]),
              {"model": sys.argv[3], "strength": 0.6, "steps": 10, "device": "cpu"})
run_batch(batch, in_process(), lambda r: print(r.status, r.frame.name, flush=True))
"""


def kill_after(argv: list[str], lines: int, timeout: float = 120) -> list[str]:
    """Start a driver, SIGKILL it once it has reported `lines` frames; returns what it reported. Bounded in
    time even when the driver never prints."""
    proc = subprocess.Popen([sys.executable, "-c", *argv], stdout=subprocess.PIPE, text=True, cwd=REPO)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        while len(seen) < lines:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            if not line:
                break
            seen.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len(seen) == lines, f"the driver reported only {seen} in {timeout} s"
    return seen


def test_a_killed_run_resumes_with_only_what_was_missing(tmp_path, ddpm_model):
    pattern = write_sequence(tmp_path / "in", 8, size=32)
    out = tmp_path / "out"
    seen = kill_after([KILLED_DRIVER, str(pattern), str(out), str(ddpm_model)], lines=3)
    assert all(line.startswith("done") for line in seen)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 3 <= len(before) < 8
    assert not list(out.glob(".*.part"))  # nothing half-written is left where an output would be
    summary = run_batch(
        Batch(
            frames_from(pattern),
            out,
            {"model": str(ddpm_model), "strength": 0.6, "steps": 10, "device": "cpu"},
        ),
        in_process(),
    )
    assert len(summary.skipped) + len(summary.done) == 8 and not summary.failed
    assert len(summary.skipped) >= 3
    assert outputs(out) == [f"frame_{i:04d}.png" for i in range(8)]
    for name in summary.skipped:
        assert (out / f"{name}.png").stat().st_mtime_ns == before[f"{name}.png"]  # not written again


# -- the command ----------------------------------------------------------------------------------------
def test_batch_command_writes_in_order_and_reports(tmp_path, ddpm_model, capsys):
    pattern = write_sequence(tmp_path / "in", 3, size=32, broken=(1,))
    out = tmp_path / "out"
    argv = [
        "batch",
        str(pattern),
        "-o",
        str(out),
        "--model",
        str(ddpm_model),
        "--steps",
        "10",
        "--device",
        "cpu",
    ]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert "2 done, 0 skipped (already done), 1 failed" in captured.err
    assert "failed frame_0001:" in captured.err
    assert captured.out.split() == [str(out / "frame_0000.png"), str(out / "frame_0002.png")]
    Image.fromarray(frame(1, 32)).save(tmp_path / "in" / "frame_0001.png")  # the user fixes the frame
    assert main(argv) == 0
    assert "1 done, 2 skipped" in capsys.readouterr().err


def test_batch_command_refuses_bad_settings_before_any_work(tmp_path, capsys):
    pattern = write_sequence(tmp_path / "in", 2)
    assert main(["batch", str(pattern), "-o", str(tmp_path / "out"), "--strength", "2"]) == 2
    assert "strength" in capsys.readouterr().err
    assert main(["batch", str(pattern), "-o", str(tmp_path / "out"), "--workers", "2"]) == 2
    assert "--workers needs --ray" in capsys.readouterr().err
    assert not (tmp_path / "out" / MANIFEST).exists()


# -- in memory: the Studio's and the server's batches ------------------------------------------------------
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 8), refused=st.sets(st.integers(0, 7)), masked=st.booleans())
def test_a_batch_in_memory_reports_every_frame_once_in_order_and_writes_nothing(
    tmp_path_factory, monkeypatch, n, refused, masked
):
    from noisebrush.core.batch.inputs import frames_of

    tmp = tmp_path_factory.mktemp("memory")
    monkeypatch.chdir(tmp)
    writes = Writes(monkeypatch)
    images = []
    for i in range(n):
        a = frame(i)
        if i in refused:
            a[0, 0, 0] = 13
        images.append((f"layer {i}", a))
    mask = np.zeros((16, 16), np.uint8)
    mask[:, :8] = 255
    batch = Batch(frames_of(images), None, {"model": "default"}, masks=Masks(None, mask if masked else None))
    seen = []
    summary = run_batch(batch, in_process(FakeEngine()), seen.append)
    assert [r.frame.index for r in seen] == list(range(n))
    for r, (_, a) in zip(seen, images, strict=True):
        if a[0, 0, 0] == 13:
            assert (r.status, r.image, r.reason) == ("failed", None, "this frame is refused")
        else:
            assert r.status == "done" and r.path is None
            np.testing.assert_array_equal(r.image, 255 - a)
    assert len(summary.done) == n - len([i for i in refused if i < n]) and summary.outputs == []
    assert writes.paths == [] and list(tmp.iterdir()) == []


def test_a_mask_of_another_size_fails_each_frame_alone_with_both_sizes():
    from noisebrush.core.batch.inputs import frames_of

    batch = Batch(
        frames_of([("a", frame(0)), ("b", frame(1))]),
        None,
        {"model": "default"},
        masks=Masks(None, np.zeros((8, 8), np.uint8)),
    )
    summary = run_batch(batch, in_process(FakeEngine()))
    assert [name for name, _ in summary.failed] == ["a", "b"]
    assert "mask is 8x8, frame a is 16x16" in summary.failed[0][1]


def test_frames_in_memory_need_one_image_and_distinct_names():
    from noisebrush.core.batch.inputs import frames_of

    with pytest.raises(BadInput, match="at least one image"):
        frames_of([])
    with pytest.raises(BadInput, match="share the name 'a'"):
        frames_of([("a", frame(0)), ("a", frame(1))])
