"""Command-line options derived from the request fields (core/engine/fields.py): the flag, type, default,
placeholder and help of `--strength` come from `SDEditRequest.strength`, so the CLI cannot drift from the
request. Only what is not a request field (files, output, budget) is declared by the commands themselves."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable
from typing import Any

from noisebrush.core.engine.fields import Spec, specs

# The file options the generating commands share (not request fields: the CLI reads them into arrays).
MASK_HELP = "white = may change, black = kept exactly; grey blends"
PREVIEWS_HELP = "write one preview PNG per step into DIR"


def add_request_options(p: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> list[str]:
    """One option per declared field of `cls` (those marked `cli`), in declaration order; returns the
    field names added, for `request_fields`."""
    hints = typing.get_type_hints(cls)
    added = []
    for spec in specs(cls).values():
        if not spec.cli or spec.name in skip:
            continue
        kind = _scalar(hints[spec.name])
        if kind is bool:
            p.add_argument(spec.flag, action="store_true", help=spec.help)
        else:
            p.add_argument(
                spec.flag,
                type=kind,
                default=spec.default,
                metavar=spec.metavar,
                choices=spec.choices,
                help=_help(spec),
            )
        added.append(spec.name)
    return added


def request_fields(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The parsed values of the options `add_request_options` added, as request keyword arguments."""
    return {name: getattr(args, name) for name in names}


def _scalar(tp: Any) -> Any:
    """int for `int | None`, and so on: the type argparse converts a value with."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp


def _help(spec: Spec) -> str:
    if spec.default is None or "default" in spec.help or spec.default == "":
        return spec.help
    return f"{spec.help} (default: {spec.default})"
