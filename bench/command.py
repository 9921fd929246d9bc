"""`noisebrush bench`: time the engine against its targets and print case, ours, peer, ratio, target."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from noisebrush.core.errors import BadInput

if TYPE_CHECKING:  # the cases import torch; the parser must not
    from noisebrush.bench.harness import Case


# The cases by name, for --help without importing them (they import torch); a test keeps it equal to all_cases().
CASE_NAMES = (
    "overhead",
    "diffusers",
    "prior-speed",
    "selection",
    "previews",
    "memory",
    "big-canvas",
    "cancel",
    "server-peak",
    "queue-memory",
    "ledits",
    "ledits-large",
    "taesd-preview",
    "lcm-edit",
    "live",
    "canvas-256",
    "canvas-768",
    "canvas-2048",
    "canvas-4096",
    "canvas-selection",
    "precision",
    "batch-ray",
    "batch-noise",
)


def all_cases() -> dict[str, Case]:
    from noisebrush.bench.batch import CASES as BATCH_CASES
    from noisebrush.bench.canvas import CASES as CANVAS_CASES
    from noisebrush.bench.jobs import CASES as JOB_CASES
    from noisebrush.bench.ledits import CASES as LEDITS_CASES
    from noisebrush.bench.live import CASES as LIVE_CASES
    from noisebrush.bench.models import CASES as MODEL_CASES
    from noisebrush.bench.precision import CASES as PRECISION_CASES
    from noisebrush.bench.sdedit import CASES

    return {
        **CASES,
        **JOB_CASES,
        **LEDITS_CASES,
        **MODEL_CASES,
        **LIVE_CASES,
        **CANVAS_CASES,
        **PRECISION_CASES,
        **BATCH_CASES,
    }


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `bench` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "bench",
        help="measure speed and memory against diffusers and the engine's targets",
        description="Runs benchmark cases side by side (ours and the peer alternately, medians of per-pair "
        f"ratios) and prints a table. Cases: {', '.join(CASE_NAMES)}. Stand-in models are built once under "
        "~/.cache/noisebrush/bench.",
    )
    p.add_argument("cases", nargs="*", metavar="CASE", help="cases to run (default: all); see --list")
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (minutes on a CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compile", action="store_true", help="also time the opt-in torch.compile path")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument(
        "--pairs", type=int, help="timed rounds per comparison (default: each case's own, fewer with --quick)"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.set_defaults(func=run_bench)
    return p


def run_bench(args: argparse.Namespace) -> int:
    from noisebrush.bench.harness import Options, Row, machine, table, write_json
    from noisebrush.core.engine.loading import quiet_libraries

    cases = all_cases()
    if args.list:
        for name, fn in cases.items():
            print(f"{name:<12} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
        return 0
    unknown = [c for c in args.cases if c not in cases]
    if unknown:
        raise BadInput(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(cases)}")
    if args.pairs is not None and args.pairs < 1:
        raise BadInput(f"--pairs must be at least 1, got {args.pairs}")
    if args.threads is not None and args.threads < 1:
        raise BadInput(f"--threads must be at least 1, got {args.threads}")
    if args.json is not None:
        from noisebrush.core.cli.run import check_writable

        if args.json.is_dir():
            raise BadInput(f"--json {args.json} is a folder; give a file name")
        if not args.json.parent.exists():
            raise BadInput(f"--json folder {args.json.parent} does not exist")
        check_writable(args.json.parent, "--json folder")  # before the cases run, not after
    options = Options(
        quick=args.quick, device=args.device, compile=args.compile, threads=args.threads, pairs=args.pairs
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options.workdir.mkdir(parents=True, exist_ok=True)
    quiet_libraries()
    rows: list[Row] = []
    threads = f"{args.threads} torch threads" if args.threads else "default torch threads"
    print(f"machine: {machine()}; {threads}; {'quick' if args.quick else 'full'} settings", file=sys.stderr)
    for name in args.cases or list(cases):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            new = cases[name](options)
            print(table(new), file=sys.stderr, flush=True)  # partial results survive an interrupted run
            rows += new
        except Exception as e:  # one broken case must not lose the others' figures
            print(f"case {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            rows.append(Row(f"{name}: FAILED", float("nan"), None, "", None, "", f"{type(e).__name__}: {e}"))
    print(table(rows))
    if args.json:
        write_json(args.json, rows, options)
    return 0
