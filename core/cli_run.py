"""Running a generating command from the CLI: validate every input first, show progress, write atomically."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadInput
from .images import WRITABLE, load_image, load_mask, save_image
from .progress import Progress
from .requests import SDEditRequest


def output_paths(guides: list[Path], output: Path, variations: int) -> list[list[Path]]:
    """Where each guide's variations go: OUT itself for one guide, OUT/<stem>.png for several."""
    if len(guides) == 1 and output.suffix:
        if output.suffix.lower() not in WRITABLE:
            raise BadInput(f"output {output} must end in one of {', '.join(sorted(WRITABLE))}")
        if not output.parent.exists():
            raise BadInput(f"output folder {output.parent} does not exist")
        base = [output]
    else:
        if output.exists() and not output.is_dir():
            raise BadInput(f"with several guides, -o must be a folder; {output} is a file")
        stems = [g.stem for g in guides]
        if len(set(stems)) != len(stems):
            raise BadInput("two guides share a file name; their outputs would overwrite each other")
        base = [output / f"{s}.png" for s in stems]
    if variations == 1:
        return [[b] for b in base]
    return [[b.with_name(f"{b.stem}-v{i}{b.suffix}") for i in range(variations)] for b in base]


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
    requests = [
        SDEditRequest(
            guide=img,
            mask=mask,
            model=args.model,
            strength=args.strength,
            steps=args.steps,
            repeats=args.repeats,
            seed=args.seed,
            variations=args.variations,
            prompt=args.prompt,
            negative_prompt=args.negative_prompt,
            guidance=args.guidance,
            device=args.device,
        )
        for img, mask in zip(images, masks, strict=True)
    ]
    for r in requests:
        r.validate()  # every input is checked before the model loads or anything is written
    if args.previews is not None and args.previews.exists() and not args.previews.is_dir():
        raise BadInput(f"--previews {args.previews} is a file; it must be a folder")
    from .engine import Engine

    engine = Engine()
    engine.prior(args.model, args.device)  # model errors surface before any work
    if len(args.guides) > 1:
        args.output.mkdir(parents=True, exist_ok=True)
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
