"""`noisebrush batch`: one SDEdit over every frame of a folder, an image sequence or an .ora's layers, on this
machine or a Ray cluster; resumable (the output folder's manifest), one output per frame, in input order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from noisebrush.core.cli.options import add_request_options, request_fields
from noisebrush.core.engine.requests import SDEditRequest

INPUT_HELP = "a folder of images, an image sequence such as frames/frame_%%04d.png, or an .ora (its layers)"
MASK_HELP = (
    "one mask for every frame, or a folder of masks matched by the frame's name or frame number "
    "(white = may change, black = kept exactly)"
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "batch",
        help="SDEdit over many frames or layers; resumable, on this machine or a Ray cluster",
        description="Runs one SDEdit over every input and writes OUT/<name>.png for each, atomically and in "
        "input order. OUT/noisebrush-batch.json records what was made from what: running the same command "
        "again skips finished frames and redoes missing or changed ones.",
    )
    p.add_argument("input", type=Path, metavar="INPUT", help=INPUT_HELP)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--mask", type=Path, metavar="PATH", help=MASK_HELP)
    p.add_argument(
        "--shared-noise",
        action="store_true",
        help="the same noise (and seed) for every frame, so what stays still between frames stays still "
        "in the outputs (default: frame number n uses seed + n)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray actors: 'auto' starts or joins a Ray on this machine, else a cluster's address "
        "(needs noisebrush[cluster])",
    )
    p.add_argument(
        "--workers", type=int, metavar="N", help="Ray actors (default: one per GPU, else one per CPU)"
    )
    p.add_argument(
        "--worker-cpus",
        type=int,
        default=1,
        metavar="N",
        help="CPUs (torch threads) per Ray actor (default: 1)",
    )
    fields = add_request_options(p, SDEditRequest, skip=("variations",))
    p.set_defaults(func=run_batch_command, fields=fields)
    return p


def run_batch_command(args: argparse.Namespace) -> int:
    from noisebrush.core.batch.inputs import Masks, frames_from
    from noisebrush.core.batch.runner import Batch, in_process, run_batch
    from noisebrush.core.cli.run import check_writable
    from noisebrush.core.errors import BadInput

    if args.workers is not None and args.ray is None:
        raise BadInput("--workers needs --ray")
    if args.output.exists() and not args.output.is_dir():
        raise BadInput(f"-o {args.output} is a file; the batch writes into a folder")
    check_writable(args.output, "output folder")
    batch = Batch(
        frames_from(args.input),
        args.output,
        request_fields(args, args.fields),
        masks=Masks(args.mask),
        shared_noise=args.shared_noise,
    )
    batch.validate()  # every setting is checked before a model loads or a Ray starts
    executor: Any
    if args.ray is not None:
        from noisebrush.core.batch.cluster import RayPool

        executor = RayPool(
            args.ray, args.workers, args.worker_cpus, batch.fields["model"], batch.fields["device"]
        )
    else:
        executor = in_process()
    bar = _bar(len(batch.frames))
    try:
        summary = run_batch(batch, executor, bar)
    finally:
        bar.close()
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    for line in summary.lines():
        print(line, file=sys.stderr)
    for path in summary.outputs:
        print(path)
    if summary.failed:
        print(
            f"noisebrush: error: {len(summary.failed)} of {len(batch.frames)} frames failed; "
            "fix them and run the same command again to finish",
            file=sys.stderr,
        )
        return 2
    return 0


class _bar:
    """Frames done, the rate and the time left (tqdm's), counting only frames that ran: skipped ones are
    shown as already done and do not inflate the rate."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, desc="batch")
        self.failed = 0
        self.skipped = 0

    def __call__(self, result: Any) -> None:
        if result.status == "skipped":
            self.skipped += 1
            self.tqdm.n += 1
            self.tqdm.initial = self.tqdm.n  # tqdm's rate counts from here, not from the skipped frames
            self.tqdm.refresh()
            return
        if result.status == "failed":
            self.failed += 1
            self.tqdm.set_postfix_str(f"{self.failed} failed", refresh=False)
        self.tqdm.update(1)

    def close(self) -> None:
        self.tqdm.close()
