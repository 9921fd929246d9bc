"""`noisebrush studio`: the desktop app's command, registered through the `noisebrush.commands` entry
point so the engine's command line never imports the GUI. Qt loads only when the command runs."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "studio", help="open the desktop app", description="NoiseBrush Studio, the desktop app"
    )
    p.add_argument("file", nargs="?", help="an image or .ora document to open")
    p.add_argument(
        "--smoke", metavar="OUT.png", help="scripted offscreen session; saves a screenshot and exits"
    )
    p.add_argument(
        "--model", default="default", help="model for the --smoke run (default: the bundled prior)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="steps for the --smoke run (default: the prior's own)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from noisebrush.core.errors import BadInput

    try:
        from noisebrush.gui import app
    except ImportError as e:
        raise BadInput(f"the desktop app needs PyQt6 and qtawesome ({e}); install noisebrush[gui]") from None
    return app.run(args)
