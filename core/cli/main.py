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

from noisebrush.core.engine.budget import MEMORY_BUDGET_HELP, budget_arg
from noisebrush.core.engine.requests import DEFAULT_STRENGTH, DEVICES
from noisebrush.core.errors import BadInput, Cancelled
from noisebrush.core.version import version

# Subcommands that live beside this module, one file each; each exposes add_parser(subparsers).
_COMMAND_MODULES = ("ledits", "train", "evaluate", "serve")
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


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The options every generating command shares, with one name per idea."""
    p.add_argument(
        "--model",
        default="default",
        help="'default' (bundled prior), a folder, a checkpoint file or a cached hub id",
    )
    p.add_argument("--steps", type=int, help="steps of the whole schedule (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt", default="", help="text for models that take it")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)} (or cuda:N)")
    p.add_argument("--mask", type=Path, help="white = may change, black = kept exactly; grey blends")
    p.add_argument("--previews", type=Path, metavar="DIR", help="write one preview PNG per step into DIR")


def _add_edit(sub: Any) -> None:
    p = sub.add_parser(
        "edit", help="SDEdit: turn guides (strokes, collages, scribbles) into realistic images"
    )
    p.add_argument("guides", nargs="+", type=Path, metavar="GUIDE")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="a file for one guide, a folder for several"
    )
    p.add_argument(
        "--strength",
        type=float,
        default=DEFAULT_STRENGTH,
        help="t0 in [0, 1]: low is faithful, high is realistic",
    )
    p.add_argument("--repeats", type=int, default=1, help="K: noise and denoise K times (paper Algorithm 2)")
    p.add_argument(
        "--variations", type=int, default=1, help="outputs per guide, with seeds seed, seed+1, ..."
    )
    p.add_argument(
        "--work-size",
        type=int,
        metavar="PX",
        help="longest side the composition runs at; a region over 1.5x larger is refined at full size "
        "(default: the model's native size; 0: one stage at full size)",
    )
    p.add_argument(
        "--refine-strength",
        type=float,
        metavar="T0",
        help="t0 in [0, 1] of the full-size refine stage (default: the model's, 0.3; 0: none)",
    )
    add_model_args(p)
    p.add_argument("--memory-budget", type=budget_arg, metavar="SIZE", help=MEMORY_BUDGET_HELP)
    p.set_defaults(func=_edit)


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list the models usable offline")
    p.set_defaults(func=_models)


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
