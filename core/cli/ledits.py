"""`noisebrush ledits`: edit a photo by adding or removing concepts (LEDITS: edit-friendly inversion + SEGA)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from noisebrush.core.engine.requests import CONCEPT_SCALE, DEVICES, MAX_SCALE, Concept, LeditsRequest, excerpt
from noisebrush.core.errors import BadInput

SCALE_HELP = (
    "a concept to {} (repeatable); SCALE defaults to the model's default_concept_scale "
    f"(noisebrush.json), {CONCEPT_SCALE:g} when it sets none"
)
_DEFAULT = Concept("_")  # the request's defaults, so the CLI and the GUI share one set


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ledits", help="LEDITS: add or remove concepts in a photo (edit-friendly DDPM inversion + SEGA)"
    )
    p.add_argument("input", type=Path, metavar="INPUT", help="the image to edit")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (or a folder: OUT/<name>.png)"
    )
    p.add_argument(
        "--add", action="append", default=[], metavar="CONCEPT[:SCALE]", help=SCALE_HELP.format("add")
    )
    p.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="CONCEPT[:SCALE]",
        help=SCALE_HELP.format("remove"),
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=_DEFAULT.threshold,
        help="SEGA's lambda: keep guidance above this quantile (0.9-0.95 typical)",
    )
    p.add_argument("--warmup", type=int, default=_DEFAULT.warmup, help="steps before concepts apply")
    p.add_argument(
        "--skip",
        type=float,
        default=0.15,
        help="fraction of the highest timesteps not regenerated (more = closer)",
    )
    p.add_argument(
        "--steps", type=int, help="steps of the whole schedule (default: the model's, at most 100)"
    )
    p.add_argument("--source-prompt", default="", help="describes the input; guides the inversion")
    p.add_argument("--source-guidance", type=float, default=3.5, help="guidance of the source prompt")
    p.add_argument("--target-prompt", default="", help="describes the result; guides the regeneration")
    p.add_argument("--guidance", type=float, default=7.5, help="guidance of the target prompt")
    p.add_argument("--momentum", type=float, default=0.3, help="SEGA momentum scale (0 = none)")
    p.add_argument("--momentum-beta", type=float, default=0.6, help="SEGA momentum decay")
    p.add_argument("--mask", type=Path, help="white = may change, black = kept exactly; grey blends")
    p.add_argument(
        "--work-size",
        type=int,
        metavar="PX",
        help="edit a larger image at this longest side and carry the change up to full size "
        "(default: the model's own, 64 for the bundled prior; 0 = always the full size)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--model",
        default="default",
        help="'default' (bundled prior), a folder, a checkpoint file or a cached hub id",
    )
    p.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)} (or cuda:N)")
    p.add_argument("--previews", type=Path, metavar="DIR", help="write one preview PNG per step into DIR")
    p.set_defaults(func=run_ledits)


def parse_concept(spec: str, remove: bool, threshold: float, warmup: int) -> Concept:
    """`text` or `text:scale`. One word after the last colon is meant as the scale, so it must be a number;
    several words after it ('style: oil painting') belong to the text."""
    text, scale = spec, _DEFAULT.scale
    head, sep, tail = spec.rpartition(":")
    if sep and len(tail.split()) <= 1:
        try:
            scale = float(tail)
        except ValueError:
            raise BadInput(
                f"concept {excerpt(spec)!r}: the scale {excerpt(tail.strip())!r} is not a number; give "
                f"CONCEPT:SCALE with a number from 0 to {MAX_SCALE:g} (e.g. 'snow:7'), or CONCEPT alone "
                "for the model's default scale"
            ) from None
        text = head
    return Concept(text.strip(), remove=remove, scale=scale, threshold=threshold, warmup=warmup)


def build_request(args: argparse.Namespace, image: Any, mask: Any) -> LeditsRequest:
    concepts = [parse_concept(s, False, args.threshold, args.warmup) for s in args.add]
    concepts += [parse_concept(s, True, args.threshold, args.warmup) for s in args.remove]
    return LeditsRequest(
        image=image,
        concepts=concepts,
        mask=mask,
        model=args.model,
        steps=args.steps,
        skip=args.skip,
        source_prompt=args.source_prompt,
        target_prompt=args.target_prompt,
        source_guidance=args.source_guidance,
        guidance=args.guidance,
        momentum=args.momentum,
        momentum_beta=args.momentum_beta,
        seed=args.seed,
        device=args.device,
        work_size=args.work_size,
    )


def run_ledits(args: argparse.Namespace) -> int:
    from noisebrush.core.cli.run import check_previews, load_inputs, make_folders, output_paths, progress_bar
    from noisebrush.core.engine.images import save_image

    if not (args.add or args.remove or args.target_prompt.strip() not in ("", args.source_prompt.strip())):
        # Regenerating an unchanged inversion gives back the input: a minute of work for a copy.
        raise BadInput(
            "nothing to edit: give --add CONCEPT or --remove CONCEPT (repeatable), "
            "or a --target-prompt that differs from --source-prompt"
        )
    [[target]] = output_paths([args.input], args.output, 1)
    [image], [mask] = load_inputs([args.input], args.mask)
    req = build_request(args, image, mask)
    req.validate()  # every input is checked before the model loads or anything is written
    check_previews(args.previews)
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.ledits import check_prior

    engine = Engine()
    check_prior(engine.prior(args.model, args.device), req)  # model and vocabulary errors before any work
    make_folders([[target]])
    callback, start, close = progress_bar(1, args.previews)
    try:
        start(args.input.stem)
        out = engine.ledits(req, callback)
        save_image(target, out)
    finally:
        close()
    print(target)
    return 0
