"""Every request field declared once: its default, bounds, choices and help live on the dataclass field
(`option(...)`), and every surface derives its own from `specs(Request)`: the CLI's options
(core/cli/options.py), the server's JSON shapes (core/server/wire.py), the Studio's forms and the plugins'
settings (plugin/shared/nb_fields.py, generated and checked by tests/test_fields.py). Torch-free: the
command line builds its parser from here.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

from noisebrush.core.errors import BadInput


@dataclass(frozen=True)
class Spec:
    """What a surface needs to know of one field besides its type."""

    name: str
    default: Any
    help: str
    type: Any = None  # the field's type, evaluated (`float | None`); None where it needs more than builtins
    low: float | None = None
    high: float | None = None
    high_open: bool = False  # the upper bound itself is not allowed: [low, high)
    choices: tuple[str, ...] | None = None
    label: str = ""  # the field in words, for GUI labels and error messages ("negative prompt")
    metavar: str | None = None  # the CLI's placeholder for the value (PX, T0)
    cli: bool = True  # False: a field the CLI fills from elsewhere (an image from a file argument)
    unit: str = ""  # said after a bound in errors ("pixels")
    why: str = ""  # said in errors where the range alone does not say what the field is ("t0 of SDEdit")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> None:
        """Fail with what is allowed; None (the model's own default) always passes."""
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise BadInput(f"{self.label} must be one of {', '.join(self.choices)}; got {str(value)[:80]!r}")
        if self.low is None or self.high is None:
            return
        inside = self.low <= value < self.high if self.high_open else self.low <= value <= self.high
        if not inside:
            if isinstance(self.low, int) and isinstance(self.high, int) and not self.high_open:
                allowed = f"between {self.low} and {self.high}"
            else:
                allowed = f"in [{_number(self.low)}, {_number(self.high)}{')' if self.high_open else ']'}"
            unit = f" {self.unit}" if self.unit else ""
            why = f" ({self.why})" if self.why else ""
            raise BadInput(f"{self.label} must be {allowed}{unit}{why}, got {value}")


def _number(value: float) -> str:
    return "2^63" if value == 2**63 else f"{value:g}"


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    high_open: bool = False,
    choices: tuple[str, ...] | None = None,
    label: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    unit: str = "",
    why: str = "",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its spec attached (the name is filled in by `specs`)."""
    spec = {
        "help": help,
        "low": low,
        "high": high,
        "high_open": high_open,
        "choices": choices,
        "label": label,
        "metavar": metavar,
        "cli": cli,
        "unit": unit,
        "why": why,
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"spec": spec})
    return dataclasses.field(default=default, metadata={"spec": spec})


def specs(cls: type) -> dict[str, Spec]:
    """The specs of a request class's declared fields, in declaration order."""
    out: dict[str, Spec] = {}
    namespace = vars(sys.modules[cls.__module__])
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("spec")
        if meta is None:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        label = meta["label"] or f.name.replace("_", " ")
        # Evaluated here, one field at a time, because a request module keeps numpy out of its import
        # (the CLI's start-up): typing.get_type_hints would need it for the image fields.
        kind = eval(f.type, namespace) if isinstance(f.type, str) else f.type  # noqa: S307 - our own annotations
        out[f.name] = Spec(name=f.name, default=default, type=kind, **{**meta, "label": label})
    return out


def check_fields(request: Any) -> None:
    """Check every declared field of `request` against its bounds and choices."""
    for spec in specs(type(request)).values():
        spec.check(getattr(request, spec.name))
