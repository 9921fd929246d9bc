"""The one written form of SEGA concepts, shared by the CLI, the server's clients and the plugins:
`snow:7, -day, +fog` adds snow at scale 7, removes day and adds fog at the model's default scale.

An item is `[+|-]TEXT[:SCALE]`; items are separated by commas, semicolons or new lines. One word after
the last colon is the scale, so it must be a number; several words after it ('style: oil painting')
belong to the text. plugin/shared/nb_edit.py mirrors this parser for the hosts' Python (it may not import
the project); tests/test_fields.py holds the two to the same answers.
"""

from __future__ import annotations

import re

from noisebrush.core.engine.requests import MAX_SCALE, Concept, excerpt
from noisebrush.core.errors import BadInput

SEPARATORS = r"[,;\n]"
SYNTAX = "[+|-]CONCEPT[:SCALE], comma-separated (e.g. 'snow:7, -day')"


def parse_concept(item: str, remove: bool = False) -> Concept | None:
    """One item; a leading '-' removes (or, with `remove`, a bare item removes). None for an empty item."""
    text = item.strip()
    if text.startswith(("-", "+")):
        remove = text[0] == "-"
        text = text[1:].strip()
    scale = None
    head, sep, tail = text.rpartition(":")
    if sep and len(tail.split()) <= 1:
        try:
            scale = float(tail)
        except ValueError:
            raise BadInput(
                f"concept {excerpt(item.strip())!r}: the scale {excerpt(tail.strip())!r} is not a number; give "
                f"CONCEPT:SCALE with a number from 0 to {MAX_SCALE:g} (e.g. 'snow:7'), or CONCEPT alone "
                "for the model's default scale"
            ) from None
        text = head.strip()
    if not text:
        return None
    return Concept(text, remove=remove, scale=scale)


def parse_concepts(text: str) -> list[Concept]:
    """Every item of `text` (see the module docstring), in order."""
    return [c for item in re.split(SEPARATORS, text) if (c := parse_concept(item)) is not None]


def format_concepts(concepts: list[Concept]) -> str:
    """The written form of `concepts`; `parse_concepts` reads it back to the same concepts."""
    items = []
    for c in concepts:
        scale = "" if c.scale is None else f":{c.scale:g}"
        items.append(f"{'-' if c.remove else ''}{c.text}{scale}")
    return ", ".join(items)
