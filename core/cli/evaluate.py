"""`noisebrush eval`: SDEdit's evaluation protocol on held-out procedural scenes (see core/lab/evaluate.py), or with
`--ledits` LEDITS' edit effect on held-out scenes (see core/lab/evaluate_ledits.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from noisebrush.core.errors import BadInput
from noisebrush.core.lab.eval_config import STRENGTHS, EvalConfig, LeditsEvalConfig

# Flags of one protocol only. They default to None, so that giving one to the other protocol is an error
# rather than silently ignored.
_SDEDIT_ONLY = (
    "guides",
    "reference",
    "strengths",
    "unconditional",
    "per_concept",
    "guidance",
    "time_size",
    "batch",
    "repeats",
)
_LEDITS_ONLY = ("images", "concepts", "scale", "threshold", "warmup", "skip", "momentum")
_CANVAS_TOO = ("guides", "reference", "strengths")  # SDEdit protocol flags the canvas protocol takes too
_CANVAS_ONLY = ("work_size", "refine_strength")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `eval` on the main CLI's subparsers."""
    d, e = EvalConfig(), LeditsEvalConfig()
    p = subparsers.add_parser(
        "eval",
        help="measure a prior: KID, L2 to the guide, concept accuracy; or LEDITS' edit effect (--ledits)",
        description="SDEdit's protocol on held-out procedural scenes: stroke paintings -> SDEdit at several t0; "
        "KID against held-out scenes (features: the shipped concept classifier) and L2 to the guide, with "
        "the stroke paintings, unconditional samples and half-vs-half held-out scenes as baselines; then "
        "concept accuracy of word-conditioned samples. Writes a markdown table. With --ledits, LEDITS' edit "
        "effect instead: every concept word added to (and, where shown, removed from) held-out scenes, judged "
        "by the same classifier, and one masked edit per scene that must leave the outside unchanged.",
    )
    p.add_argument("--model", default=d.model, help="model name or folder (default: the bundled prior)")
    p.add_argument("--size", type=int, default=d.size, help=f"image size in pixels (default {d.size})")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the prior's)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"held-out seed (default {d.seed})")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--classifier", default="", help="classifier folder (default: the shipped one)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument(
        "--out", type=Path, default=None, help="folder for report.md, report.json and examples.png"
    )

    s = p.add_argument_group("SDEdit protocol (the default)")
    s.add_argument("--guides", type=int, help=f"held-out stroke guides (default {d.guides})")
    s.add_argument("--reference", type=int, help=f"held-out reference scenes (default {d.reference})")
    s.add_argument(
        "--strengths", help=f"t0 values, comma-separated (default {','.join(f'{v:g}' for v in STRENGTHS)})"
    )
    s.add_argument(
        "--unconditional", type=int, help=f"unconditional samples, 0 = skip (default {d.unconditional})"
    )
    s.add_argument(
        "--per-concept", type=int, help=f"samples per concept word, 0 = skip (default {d.per_concept})"
    )
    s.add_argument("--guidance", type=float, help="guidance for concept samples (default: the prior's)")
    s.add_argument(
        "--time-size", type=int, help=f"also time one SDEdit of this size, 0 = skip (default {d.time_size})"
    )
    s.add_argument(
        "--batch",
        type=int,
        help=f"guides per batched SDEdit run, 1 = one Engine.sdedit call per guide (default {d.batch})",
    )

    s.add_argument(
        "--repeats",
        type=int,
        help=f"K: SDEdit's noise-and-denoise cycles per guide; SDEdit's official code uses 3 (default {d.repeats})",
    )

    c = p.add_argument_group("SDEdit at canvas size (--canvas)")
    c.add_argument(
        "--canvas",
        metavar="SIZES",
        help="held-out scenes at these sizes, comma-separated (e.g. 256,512): one stage beside the two-stage "
        "plan, against a native --size run (KID, band energy, false concepts, L2 at the native scale)",
    )
    c.add_argument(
        "--work-size", type=int, help="the two-stage plan's composition size (default: the model's own plan)"
    )
    c.add_argument("--refine-strength", type=float, help="t0 of the refine stage (default: the model's)")

    g = p.add_argument_group("LEDITS edit effect (--ledits)")
    g.add_argument(
        "--ledits", action="store_true", help="evaluate LEDITS' add/remove edits instead of SDEdit"
    )
    g.add_argument("--images", type=int, help=f"held-out scenes (default {e.images})")
    g.add_argument(
        "--concepts", help="concept words, comma-separated (default: every classifier word the model knows)"
    )
    g.add_argument(
        "--scale", type=float, help="concept scale (default: the model's own, as `noisebrush ledits`)"
    )
    g.add_argument("--threshold", type=float, help=f"SEGA threshold quantile (default {e.threshold})")
    g.add_argument("--warmup", type=int, help=f"steps before concepts apply (default {e.warmup})")
    g.add_argument(
        "--skip", type=float, help=f"fraction of the highest timesteps not regenerated (default {e.skip})"
    )
    g.add_argument("--momentum", type=float, help=f"SEGA momentum scale, 0 = none (default {e.momentum})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.canvas is not None and args.ledits:
        raise BadInput("--canvas and --ledits are two protocols; give one")
    others: tuple[str, ...] = _SDEDIT_ONLY if args.ledits else _LEDITS_ONLY
    if args.canvas is not None:
        others = _LEDITS_ONLY + tuple(n for n in _SDEDIT_ONLY if n not in _CANVAS_TOO)
    else:
        others = others + _CANVAS_ONLY
    stray = [name for name in others if getattr(args, name) is not None]
    if stray:
        first = stray[0]
        protocol = (
            "SDEdit at canvas size (--canvas)"
            if first in _CANVAS_ONLY
            else "LEDITS evaluation (--ledits)"
            if first in _LEDITS_ONLY
            else "SDEdit protocol (without --ledits or --canvas)"
        )
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in stray)
        raise BadInput(f"{flags} belong(s) to the {protocol}; drop them or switch protocol")
    for flag in ("size", "steps", "guides", "reference", "images", "batch", "repeats"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise BadInput(f"--{flag} must be at least 1, got {value}")
    if args.out is not None:
        from noisebrush.core.cli.run import check_writable

        if args.out.exists() and not args.out.is_dir():
            raise BadInput(f"--out {args.out} is a file; it must be a folder")
        check_writable(args.out, "--out folder")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.canvas is not None:
        return run_canvas(args)
    return run_ledits(args) if args.ledits else run_sdedit(args)


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _shared(args: argparse.Namespace) -> dict:
    """The settings both protocols take."""
    names = ("model", "size", "steps", "seed", "device", "classifier")
    return {n: getattr(args, n) for n in names}


def parse_strengths(text: str) -> tuple[float, ...]:
    """t0 values such as '0.3,0.5,0.7', each in [0, 1]."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise BadInput(f"--strengths must be comma-separated numbers in [0, 1], e.g. '0.3,0.5'; got {text!r}")
    return values


def _progress_bar(desc: str, total: int | None = None) -> tuple[tqdm, Callable[[str, int], None]]:
    """A bar on stderr and the evaluations' progress callback: what runs now, and images done since."""
    bar = tqdm(desc=desc, unit="img", total=total)

    def progress(what: str, done: int) -> None:
        bar.set_postfix_str(what)
        bar.update(done)

    return bar, progress


def run_sdedit(args: argparse.Namespace) -> int:
    from noisebrush.core.lab.evaluate import evaluate, example_sheet, to_markdown, write_report

    given = _given(args, _SDEDIT_ONLY)
    if "strengths" in given:
        given["strengths"] = parse_strengths(given["strengths"])
    config = EvalConfig(
        **_shared(args),
        **given,
    )
    bar, progress = _progress_bar("eval")

    from noisebrush.core.engine.engine import Engine

    engine = Engine()
    report = evaluate(config, engine, progress)
    bar.close()
    print(to_markdown(report))
    if args.out:
        write_report(report, args.out)
        example_sheet(engine, config, args.out / "examples.png")
        print(f"wrote {args.out / 'report.md'}")
    return 0


def run_ledits(args: argparse.Namespace) -> int:
    from noisebrush.core.lab.evaluate_ledits import evaluate_ledits, to_markdown, write_report

    given = _given(args, _LEDITS_ONLY)
    if "concepts" in given:
        given["concepts"] = tuple(w.strip() for w in given["concepts"].split(",") if w.strip())
    config = LeditsEvalConfig(
        **_shared(args),
        **given,
    )
    config.validate()
    bar, progress = _progress_bar("eval --ledits", config.images)

    report = evaluate_ledits(config, None, progress)
    bar.close()
    print(to_markdown(report))
    if args.out:
        write_report(report, args.out)
        print(f"wrote {args.out / 'report.md'}")
    return 0


def parse_sizes(text: str) -> tuple[int, ...]:
    """Canvas sizes such as '256,512', each at least 8 pixels."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(v >= 8 for v in values):
        raise BadInput(
            f"--canvas must be comma-separated sizes of 8 pixels or more, e.g. '256,512'; got {text!r}"
        )
    return values


def run_canvas(args: argparse.Namespace) -> int:
    from noisebrush.core.lab.eval_config import CanvasEvalConfig
    from noisebrush.core.lab.evaluate_canvas import evaluate_canvas, to_markdown, write_canvas_report

    given = _given(args, _CANVAS_TOO + _CANVAS_ONLY)
    if "strengths" in given:
        given["strengths"] = parse_strengths(given["strengths"])
    names = ("model", "steps", "seed", "device", "classifier")
    config = CanvasEvalConfig(
        **{n: getattr(args, n) for n in names}, sizes=parse_sizes(args.canvas), native=args.size, **given
    )
    config.validate()
    bar, progress = _progress_bar("eval --canvas")

    report = evaluate_canvas(config, None, progress)
    bar.close()
    print(to_markdown(report))
    if args.out:
        write_canvas_report(report, args.out)
        print(f"wrote {args.out / 'report-canvas.md'}")
    return 0
