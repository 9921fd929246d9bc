"""`noisebrush ledits`: edit a photo by adding or removing concepts (LEDITS: edit-friendly inversion + SEGA)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from noisebrush.core.cli.options import MASK_HELP, PREVIEWS_HELP, add_request_options, request_fields
from noisebrush.core.engine.concepts import SYNTAX, parse_concept, parse_concepts
from noisebrush.core.engine.requests import CONCEPT_SCALE, Concept, LeditsRequest, excerpt
from noisebrush.core.errors import BadInput

CONCEPT_HELP = (
    "a concept to {} (repeatable), CONCEPT or CONCEPT:SCALE; SCALE defaults to the model's "
    f"default_concept_scale (noisebrush.json), {CONCEPT_SCALE:g} when it sets none"
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ledits", help="LEDITS: add or remove concepts in a photo (edit-friendly DDPM inversion + SEGA)"
    )
    p.add_argument("input", type=Path, metavar="INPUT", help="the image to edit")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (or a folder: OUT/<name>.png)"
    )
    p.add_argument("--mask", type=Path, help=MASK_HELP)
    p.add_argument(
        "--add", action="append", default=[], metavar="CONCEPT[:SCALE]", help=CONCEPT_HELP.format("add")
    )
    p.add_argument(
        "--remove", action="append", default=[], metavar="CONCEPT[:SCALE]", help=CONCEPT_HELP.format("remove")
    )
    p.add_argument("--concepts", default="", metavar="LIST", help=f"several at once: {SYNTAX}")
    concept_fields = add_request_options(p, Concept)
    fields = add_request_options(p, LeditsRequest)
    p.add_argument("--previews", type=Path, metavar="DIR", help=PREVIEWS_HELP)
    p.set_defaults(func=run_ledits, fields=fields, concept_fields=concept_fields)


def concepts_of(args: argparse.Namespace) -> list[Concept]:
    """--concepts, then --add and --remove, each in the one written form (core/engine/concepts.py), with
    the concept options applied to all of them."""
    concepts = parse_concepts(args.concepts)
    for items, remove in ((args.add, False), (args.remove, True)):
        for item in items:
            concept = parse_concept(item, remove)
            if concept is None:
                raise BadInput(f"--{'remove' if remove else 'add'} needs a concept, got {excerpt(item)!r}")
            concepts.append(concept)
    shared = request_fields(args, args.concept_fields)
    return [dataclasses.replace(c, **shared) for c in concepts]


def build_request(args: argparse.Namespace, image: Any, mask: Any) -> LeditsRequest:
    return LeditsRequest(
        image=image, mask=mask, concepts=concepts_of(args), **request_fields(args, args.fields)
    )


def run_ledits(args: argparse.Namespace) -> int:
    from noisebrush.core.cli.run import check_previews, load_inputs, make_folders, output_paths, progress_bar
    from noisebrush.core.engine.images import save_image

    if not (
        args.add
        or args.remove
        or args.concepts.strip()
        or args.target_prompt.strip() not in ("", args.source_prompt.strip())
    ):
        # Regenerating an unchanged inversion gives back the input: a minute of work for a copy.
        raise BadInput(
            "nothing to edit: give --add CONCEPT or --remove CONCEPT (repeatable), --concepts LIST, "
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
