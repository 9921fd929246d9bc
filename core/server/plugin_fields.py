"""The request fields as the plugins see them: plugin/shared/nb_fields.py is generated from the request
dataclasses' specs (core/engine/fields.py), because a plugin runs in Krita's or GIMP's Python and may not
import the project. tests/test_fields.py fails when the file and the requests drift apart; regenerate with

    .venv/bin/python -m noisebrush.core.server.plugin_fields
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from noisebrush.core.engine.fields import specs
from noisebrush.core.engine.requests import Concept, LeditsRequest, SDEditRequest

TARGET = Path(__file__).resolve().parents[2] / "plugin" / "shared" / "nb_fields.py"
HEADER = '''"""The server's job fields for the plugins: default, bounds, choices and help of each.

Generated from the engine's request dataclasses by `python -m noisebrush.core.server.plugin_fields`;
do not edit by hand (tests/test_fields.py fails when this file and the requests differ).
"""

'''


WIDGET_STEP = 0.01  # the finest step of the plugins' number widgets


def _highest(high: float | None, open_: bool) -> float | None:
    """The largest value a plugin widget may offer: an upper bound the request excludes ([0, 1) for skip)
    comes down by one widget step, so no widget can send what the server refuses."""
    if high is None or not open_:
        return high
    return high - 1 if isinstance(high, int) else round(high - WIDGET_STEP, 6)


def table() -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, cls in (("sdedit", SDEditRequest), ("ledits", LeditsRequest), ("concept", Concept)):
        out[kind] = {
            name: {
                "default": s.default,
                "low": s.low,
                "high": _highest(s.high, s.high_open),
                "choices": list(s.choices) if s.choices else None,
                "label": s.label,
                "help": s.help,
            }
            for name, s in specs(cls).items()
        }
    return out


def render() -> str:
    lines = [HEADER + "FIELDS = {"]
    for kind, fields in table().items():
        lines.append(f"    {kind!r}: {{")
        lines += [f"        {name!r}: {spec!r}," for name, spec in fields.items()]
        lines.append("    },")
    return "\n".join(lines) + "\n}\n"


def main() -> int:
    TARGET.write_text(render(), encoding="utf-8")
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
