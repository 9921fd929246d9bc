"""The batch cases: frames per second in-process against a pool of Ray actors, and how much shared noise
steadies the static part of an animation.

Each case is `(Options) -> list[Row]`; `CASES` names them for `noisebrush bench`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisebrush.bench.harness import Case, Options, Row, bundled_or_standin, side_by_side
from noisebrush.core.batch.inputs import frames_from
from noisebrush.core.batch.runner import Batch, Executor, in_process, run_batch

STEPS = 10  # of the whole schedule; strength 0.5 makes about 5 model calls per stage


def sequence(folder: Path, frames: int, size: int) -> Path:
    """An animation whose background never moves (sky, mountain, field) and whose foreground (a dark
    square) crosses it; returns its pattern. The foreground stays in the upper-left two thirds, so the
    lower-right third is static in every frame."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        a = np.empty((size, size, 3), np.uint8)
        a[: size // 2] = (110, 150, 215)
        a[size // 2 :] = (70, 125, 60)
        a[size // 3 : size // 2, size // 4 : 3 * size // 4] = (150, 150, 160)
        s = size // 8
        x = (size // 2 - s) * i // max(frames - 1, 1)
        a[size // 8 : size // 8 + s, x : x + s] = (30, 30, 35)
        Image.fromarray(a).save(folder / f"frame_{i:04d}.png")
    return folder / "frame_%04d.png"


def static_region(size: int) -> np.ndarray:
    """Pixels far from anything that moves: below and right of the foreground's whole path, with a margin
    of a quarter of the image for the prior's receptive field."""
    m = np.zeros((size, size), bool)
    m[size // 2 + size // 8 :, 3 * size // 4 :] = True
    return m


def _fields(model: str, device: str) -> dict[str, Any]:
    return {"model": model, "strength": 0.5, "steps": STEPS, "device": device, "seed": 0}


def _run(pattern: Path, fields: dict[str, Any], executor: Executor) -> None:
    if _frames_per_second(pattern, fields, executor) <= 0:
        raise RuntimeError("no frame was made")


def _frames_per_second(pattern: Path, fields: dict[str, Any], executor: Executor) -> float:
    with tempfile.TemporaryDirectory() as out:
        batch = Batch(frames_from(pattern), Path(out), fields)
        start = time.perf_counter()
        summary = run_batch(batch, executor)
        seconds = time.perf_counter() - start
    if summary.failed:
        raise RuntimeError(f"frames failed: {summary.failed[0]}")
    return len(summary.done) / seconds


def ray_overhead(opt: Options) -> list[Row]:
    """Frames/s of a 16-frame 128 px batch on the bundled prior: in-process against Ray with one actor
    (the actor gets the same torch threads), then Ray with one against two single-threaded actors."""
    import ray
    import torch

    from noisebrush.core.batch.cluster import RayPool
    from noisebrush.core.engine.engine import Engine

    path, label = bundled_or_standin(opt.workdir)
    frames, size = (8, 64) if opt.quick else (16, 128)
    # One thread on both sides unless --threads says: two OpenMP threads on a busy 2-core machine spin
    # against each other (tests/conftest.py), which would time the contention, not Ray.
    threads = opt.threads or 1
    fields = _fields(str(path), opt.device)
    rows = []
    before = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        pattern = sequence(Path(tmp) / "in", frames, size)
        engine = Engine()
        engine.prior(str(path), opt.device)  # loaded before timing, as each actor's is
        # Ray starts its workers at niceness 15; on a machine others use that alone slows them, so the
        # comparison with the (un-niced) in-process run is made at the same priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(
            address="local", num_cpus=max(2, threads), include_dashboard=False, logging_level=logging.ERROR
        )
        try:
            torch.set_num_threads(threads)
            with RayPool(workers=1, worker_cpus=threads, model=str(path), device=opt.device) as pool:
                # alternately, so the machine's drift hits both; the median of the per-pair ratios
                ray_s, local_s, ratio = side_by_side(
                    lambda: _run(pattern, fields, pool),
                    lambda: _run(pattern, fields, in_process(engine)),
                    opt.rounds(1, 2),
                    warmup=0,
                )
            note = f"{frames} frames {size}px, {label}, {threads} torch thread(s) each, per-frame"
            rows.append(
                Row(
                    "batch ray-1 vs local",
                    ray_s / frames,
                    local_s / frames,
                    "s/frame",
                    ratio,
                    "<= 1.15",
                    note,
                )
            )
            with RayPool(workers=1, worker_cpus=1, model=str(path), device=opt.device) as pool:
                single = _frames_per_second(pattern, fields, pool)
            with RayPool(workers=2, worker_cpus=1, model=str(path), device=opt.device) as pool:
                double = _frames_per_second(pattern, fields, pool)
            rows.append(
                Row(
                    "batch ray-2 vs ray-1",
                    1 / double,
                    1 / single,
                    "s/frame",
                    single / double,
                    "",
                    f"speed-up of two single-threaded actors over one ({frames} frames {size}px); "
                    "ratio = ray-2 time / ray-1 time (below 1: two actors are faster)",
                )
            )
        finally:
            torch.set_num_threads(before)
            ray.shutdown()
    return rows


def stability(outputs: list[np.ndarray], region: np.ndarray) -> float:
    """Mean absolute frame-to-frame change (0-255) inside `region`."""
    return float(
        np.mean(
            [
                np.abs(b[region].astype(float) - a[region].astype(float)).mean()
                for a, b in zip(outputs, outputs[1:], strict=False)
            ]
        )
    )


def shared_noise(opt: Options) -> list[Row]:
    """Frame-to-frame change in the static region with independent noise over that with shared noise
    (target >= 5), and what shared noise costs in faithfulness (distance from the input frames)."""
    path, label = bundled_or_standin(opt.workdir)
    frames, size = (6, 64) if opt.quick else (12, 64)
    fields = _fields(str(path), opt.device)
    from noisebrush.core.engine.engine import Engine

    engine = Engine()
    region = static_region(size)
    results: dict[bool, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pattern = sequence(Path(tmp) / "in", frames, size)
        inputs = [np.asarray(Image.open(p)) for p in sorted((Path(tmp) / "in").glob("*.png"))]
        for shared in (True, False):
            out = Path(tmp) / f"out-{shared}"
            run_batch(Batch(frames_from(pattern), out, fields, shared_noise=shared), in_process(engine))
            outs = [np.asarray(Image.open(p))[..., :3] for p in sorted(out.glob("*.png"))]
            distance = float(
                np.mean(
                    [
                        np.abs(o.astype(float) - i.astype(float)).mean()
                        for o, i in zip(outs, inputs, strict=True)
                    ]
                )
            )
            results[shared] = (stability(outs, region), distance)
    (flicker_shared, far_shared), (flicker_free, far_free) = results[True], results[False]
    note = f"{frames} frames {size}px, strength 0.5, {STEPS} steps, {label}; mean |change| 0-255 in the static corner"
    return [
        Row(
            "batch shared-noise stability",
            flicker_shared,
            flicker_free,
            "|d|/px",
            flicker_free / max(flicker_shared, 1e-9),
            ">= 5",
            note + "; ratio = independent / shared",
        ),
        Row(
            "batch shared-noise faithfulness",
            far_shared,
            far_free,
            "|d|/px",
            far_shared / far_free,
            "",
            "mean |output - input| over whole frames, shared / independent",
        ),
    ]


CASES: dict[str, Case] = {"batch-ray": ray_overhead, "batch-noise": shared_noise}
