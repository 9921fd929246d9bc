"""The `noisebrush` command line. Exit status: 0 success, 2 any failure (one line on stderr), 130 cancelled."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from noisebrush.core.cli.options import MASK_HELP, PREVIEWS_HELP, add_request_options
from noisebrush.core.cli.serve import DEFAULT_URL
from noisebrush.core.engine.budget import MEMORY_BUDGET_HELP, budget_arg
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput, Cancelled
from noisebrush.core.version import version

# Subcommands that live beside this module, one file each; each exposes add_parser(subparsers).
_COMMAND_MODULES = ("ledits", "batch", "train", "evaluate", "serve")
# Surfaces above the engine (the desktop app's `studio`, the benchmarks' `bench`) add their commands
# through these entry points (pyproject.toml), so the command line never imports them by name.
COMMANDS_GROUP = "noisebrush.commands"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors also exit 2 with one line
        self.exit(2, f"noisebrush: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noisebrush", description="Guided image synthesis and editing with diffusion priors."
    )
    parser.add_argument("--version", action="version", version=f"noisebrush {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_edit(sub)
    _add_models(sub)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def _add_edit(sub: Any) -> None:
    p = sub.add_parser(
        "edit", help="SDEdit: turn guides (strokes, collages, scribbles) into realistic images"
    )
    p.add_argument("guides", nargs="+", type=Path, metavar="GUIDE")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="a file for one guide, a folder for several"
    )
    p.add_argument("--mask", type=Path, help=MASK_HELP)
    fields = add_request_options(p, SDEditRequest)
    p.add_argument(
        "--control-image",
        type=Path,
        metavar="FILE",
        help="the ControlNet's control image, the guide's size (default: made from the guide by --control-map)",
    )
    p.add_argument("--previews", type=Path, metavar="DIR", help=PREVIEWS_HELP)
    p.add_argument("--memory-budget", type=budget_arg, metavar="SIZE", help=MEMORY_BUDGET_HELP)
    p.add_argument("--server", nargs="?", const=DEFAULT_URL, metavar="URL", help=SERVER_HELP)
    p.set_defaults(func=_edit, fields=fields)


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list the models usable offline")
    p.set_defaults(func=_models)


SERVER_HELP = (
    f"run the edit on a running `noisebrush serve` at URL (default {DEFAULT_URL}; the token is read from the "
    "server's token file): the model stays loaded there, so a small edit takes seconds, not a fresh start-up"
)
TRACEBACK_ENV = "NOISEBRUSH_TRACEBACK"  # set to 1 to see where an internal error came from


def main(argv: list[str] | None = None) -> int:
    """Run one command. Whatever happens, the user sees one line on stderr, never a traceback: exit 2 for
    anything that failed (bad input, a file that cannot be written, a bug of ours), 130 when cancelled."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except BadInput as e:
        return _fail(f"error: {e}")
    except (Cancelled, KeyboardInterrupt):
        print("noisebrush: cancelled; nothing was written", file=sys.stderr)
        return 130
    except OSError as e:  # the file system said no: a full disk, a folder made read-only mid-run
        where = f": {e.filename}" if e.filename else ""
        return _fail(f"error: {e.strerror or e}{where}")
    except Exception as e:  # a bug of ours; still one line, with the way to see more
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        return _fail(
            f"internal error: {type(e).__name__}: {e} (please report it; rerun with {TRACEBACK_ENV}=1 "
            "for the traceback)"
        )


def _fail(message: str) -> int:
    one_line = " ".join(message.split())  # a message from a library may span lines; the contract is one
    print(f"noisebrush: {one_line}", file=sys.stderr)
    return 2


def _edit(args: argparse.Namespace) -> int:
    from noisebrush.core.cli.run import run_edit

    return run_edit(args)


def _models(args: argparse.Namespace) -> int:
    from noisebrush.core.engine.sources import list_models

    rows = list_models()
    if not rows:
        print("no models found (the bundled prior is missing; see README)")
        return 0
    width = max(len(r.name) for r in rows)
    print(f"{'NAME':<{width}}  {'KIND':<14} {'SIZE':>9}  SOURCE     PATH")
    for r in rows:
        print(f"{r.name:<{width}}  {r.kind:<14} {_human(r.size_bytes):>9}  {r.source:<10} {r.path}")
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


if __name__ == "__main__":
    sys.exit(main())
