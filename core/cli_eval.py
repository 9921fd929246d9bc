"""`noisebrush eval`: SDEdit's evaluation protocol on held-out procedural scenes (see core/evaluate.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from .evaluate import STRENGTHS, EvalConfig, evaluate, example_sheet, to_markdown, write_report


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `eval` on the main CLI's subparsers."""
    d = EvalConfig()
    p = subparsers.add_parser(
        "eval",
        help="measure a prior: KID, L2 to the guide, concept accuracy",
        description="SDEdit's protocol on held-out procedural scenes: stroke paintings -> SDEdit at several t0; "
        "KID against held-out scenes (features: the shipped concept classifier) and L2 to the guide, with "
        "the stroke paintings, unconditional samples and half-vs-half held-out scenes as baselines; then "
        "concept accuracy of word-conditioned samples. Writes a markdown table.",
    )
    p.add_argument("--model", default=d.model, help="model name or folder (default: the bundled prior)")
    p.add_argument("--size", type=int, default=d.size, help=f"image size in pixels (default {d.size})")
    p.add_argument(
        "--guides", type=int, default=d.guides, help=f"held-out stroke guides (default {d.guides})"
    )
    p.add_argument(
        "--reference",
        type=int,
        default=d.reference,
        help=f"held-out reference scenes (default {d.reference})",
    )
    p.add_argument(
        "--strengths", default=",".join(f"{s:g}" for s in STRENGTHS), help="t0 values, comma-separated"
    )
    p.add_argument(
        "--unconditional", type=int, default=d.unconditional, help="unconditional samples (0 = skip)"
    )
    p.add_argument(
        "--per-concept", type=int, default=d.per_concept, help="samples per concept word (0 = skip)"
    )
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the prior's)")
    p.add_argument(
        "--guidance", type=float, default=None, help="guidance for concept samples (default: the prior's)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"held-out seed (default {d.seed})")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--classifier", default="", help="classifier folder (default: the shipped one)")
    p.add_argument(
        "--time-size", type=int, default=d.time_size, help="also time one SDEdit of this size (0 = skip)"
    )
    p.add_argument(
        "--batch",
        type=int,
        default=d.batch,
        help="guides per batched SDEdit run (1 = one Engine.sdedit call per guide)",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument(
        "--out", type=Path, default=None, help="folder for report.md, report.json and examples.png"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = EvalConfig(
        model=args.model,
        size=args.size,
        guides=args.guides,
        reference=args.reference,
        strengths=tuple(float(s) for s in args.strengths.split(",") if s),
        unconditional=args.unconditional,
        per_concept=args.per_concept,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        device=args.device,
        classifier=args.classifier,
        time_size=args.time_size,
        batch=args.batch,
    )
    bar = tqdm(desc="eval", unit="img")

    def progress(what: str, done: int) -> None:
        bar.set_postfix_str(what)
        bar.update(done)

    from .engine import Engine

    engine = Engine()
    report = evaluate(config, engine, progress)
    bar.close()
    print(to_markdown(report))
    if args.out:
        write_report(report, args.out)
        example_sheet(engine, config, args.out / "examples.png")
        print(f"wrote {args.out / 'report.md'}")
    return 0
