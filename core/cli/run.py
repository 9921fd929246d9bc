"""Running a generating command from the CLI: validate every input first, show progress, write atomically."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from noisebrush.core.cli.options import request_fields
from noisebrush.core.engine.images import WRITABLE, load_image, load_mask, save_image
from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput


def output_paths(guides: list[Path], output: Path, variations: int) -> list[list[Path]]:
    """Where each guide's variations go: OUT itself for one guide, OUT/<stem>.png for several (or when OUT
    is a folder). Fails now, before any work, if they could not be written."""
    if len(guides) == 1 and output.suffix and not output.is_dir():
        if output.suffix.lower() not in WRITABLE:
            raise BadInput(f"output {output} must end in one of {', '.join(sorted(WRITABLE))}")
        if not output.parent.exists():
            raise BadInput(f"output folder {output.parent} does not exist")
        check_writable(output.parent, "output folder")
        base = [output]
    else:
        if output.exists() and not output.is_dir():
            if len(guides) > 1:
                raise BadInput(f"with several guides, -o must be a folder; {output} is a file")
            raise BadInput(
                f"output {output} is a file without an image suffix ({', '.join(sorted(WRITABLE))}); "
                "give a file name with one, or a folder"
            )
        stems = [g.stem for g in guides]
        if len(set(stems)) != len(stems):
            raise BadInput("two guides share a file name; their outputs would overwrite each other")
        check_writable(output, "output folder")
        base = [output / f"{s}.png" for s in stems]
    if variations == 1:
        return [[b] for b in base]
    return [[b.with_name(f"{b.stem}-v{i}{b.suffix}") for i in range(variations)] for b in base]


def check_writable(folder: Path, what: str) -> None:
    """Fail unless files can be made in `folder`, or in the folder that will hold it when it is made: a run
    that meets a read-only folder only when it saves has wasted every step before."""
    existing = folder.absolute()
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{what} {folder} cannot be made: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".noisebrush-probe-", dir=existing)
    except OSError as e:
        raise BadInput(
            f"{what} {folder} is not writable ({e.strerror or e}); choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_previews(previews: Path | None) -> None:
    if previews is None:
        return
    if previews.exists() and not previews.is_dir():
        raise BadInput(f"--previews {previews} is a file; it must be a folder")
    check_writable(previews, "--previews folder")


def make_folders(paths: list[list[Path]]) -> None:
    """Make the output folders (checked writable at the start) just before the first result is saved."""
    for path in {p.parent for ps in paths for p in ps}:
        path.mkdir(parents=True, exist_ok=True)


def load_inputs(
    guides: list[Path], mask_path: Path | None
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    images = [load_image(g, "guide") for g in guides]
    masks: list[np.ndarray | None] = []
    for img in images:
        masks.append(None if mask_path is None else load_mask(mask_path, (img.shape[1], img.shape[0])))
    return images, masks


def progress_bar(
    total_runs: int, previews: Path | None
) -> tuple[Callable[[Progress], None], Callable[[str], None], Callable[[], None]]:
    """A tqdm bar on stderr plus optional preview PNGs; returns (callback, start_run, close)."""
    from tqdm import tqdm

    bars: list[Any] = []  # one bar per run, made when the run starts so nothing prints before
    state: dict[str, object] = {"run": ""}

    def start(name: str) -> None:
        close()
        state["run"] = name
        bars.append(tqdm(total=None, desc=name, unit="step", file=sys.stderr, dynamic_ncols=True))

    def close() -> None:
        while bars:
            bars.pop().close()

    def callback(p: Progress) -> None:
        bar = bars[-1] if bars else None
        if bar is not None:
            if bar.total != p.total:
                bar.total = p.total
            bar.update(p.step - bar.n)
        if previews is not None:
            folder = previews / str(state["run"]) if total_runs > 1 else previews
            folder.mkdir(parents=True, exist_ok=True)
            img = p.preview()
            if img is not None:
                save_image(folder / f"step-{p.step:04d}.png", img)

    return callback, start, close


def run_edit(args: argparse.Namespace) -> int:
    targets = output_paths(args.guides, args.output, args.variations)
    images, masks = load_inputs(args.guides, args.mask)
    control = None if args.control_image is None else load_image(args.control_image, "control image")
    requests = [
        SDEditRequest(guide=img, mask=mask, control=control, **request_fields(args, args.fields))
        for img, mask in zip(images, masks, strict=True)
    ]
    for r in requests:
        r.validate()  # every input is checked before the model loads or anything is written
    check_previews(args.previews)
    if args.server:
        from noisebrush.core.cli.remote import run_remote

        return run_remote(args, requests, targets, make_folders)
    from noisebrush.core.engine.engine import Engine

    engine = Engine(memory_budget=args.memory_budget)
    engine.prior(args.model, args.device)  # model errors surface before any work
    make_folders(targets)
    callback, start, close = progress_bar(len(requests), args.previews)
    try:
        for guide, req, paths in zip(args.guides, requests, targets, strict=True):
            start(guide.stem)
            outputs = engine.sdedit(req, callback)
            for out, path in zip(outputs, paths, strict=True):
                save_image(path, out)
    finally:
        close()
    print(os.linesep.join(str(p) for ps in targets for p in ps))
    return 0
