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
    added = []
    for spec in specs(cls).values():
        if not spec.cli or spec.name in skip:
            continue
        kind = _scalar(spec.type)
        if kind is bool:
            p.add_argument(spec.flag, action="store_true", help=spec.help)
        elif typing.get_origin(kind) is tuple:
            # A `tuple[Item, ...]` field takes one flag per item, repeated (`--lora A --lora B` fills `loras`);
            # an item type with a `parse` classmethod reads its own text form.
            item = typing.get_args(kind)[0]
            p.add_argument(
                spec.flag.removesuffix("s"),
                spec.flag,
                dest=spec.name,
                action=_AppendItem,
                type=_item_parser(item),
                default=spec.default,
                metavar=spec.metavar,
                help=spec.help,
            )
        else:
            p.add_argument(
                spec.flag,
                type=kind,
                default=spec.default,
                metavar=spec.metavar or (None if spec.choices else _METAVARS.get(kind)),
                choices=spec.choices,
                help=_help(spec),
            )
        added.append(spec.name)
    return added


def request_fields(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The parsed values of the options `add_request_options` added, as request keyword arguments."""
    return {name: getattr(args, name) for name in names}


class _AppendItem(argparse.Action):
    """argparse's append for a tuple-valued field: each use adds one item to a new tuple."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, (*getattr(namespace, self.dest, ()), values))


def _item_parser(item: Any) -> Any:
    parse = getattr(item, "parse", None)
    if parse is None:
        return item

    def parser(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parser.__name__ = item.__name__
    return parser


_METAVARS = {int: "N", float: "X", str: "TEXT"}


def _scalar(tp: Any) -> Any:
    """int for `int | None`, and so on: the type argparse converts a value with."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp


def _help(spec: Spec) -> str:
    if spec.default is None or "default" in spec.help or spec.default == "":
        return spec.help
    return f"{spec.help} (default: {spec.default})"
