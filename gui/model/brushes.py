"""Brush presets: named settings of the one round dab (size, hardness, opacity, pressure, smoothing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BrushPreset:
    name: str
    size: float  # diameter in document pixels
    hardness: float
    opacity: float
    pressure: bool
    smoothing: float  # 0 = the pen as it moves, 1 = the most stabilised

    def settings(self) -> dict[str, object]:
        """The ToolState fields this preset sets."""
        values = asdict(self)
        del values["name"]
        return values


PRESETS: tuple[BrushPreset, ...] = (
    BrushPreset("Round", 24.0, 0.7, 1.0, True, 0.0),
    BrushPreset("Soft airbrush", 90.0, 0.0, 0.15, True, 0.2),
    BrushPreset("Hard ink", 6.0, 1.0, 1.0, True, 0.6),
    # SDEdit guides are flat blobs of colour: big, hard, opaque, the same whatever the pen pressure.
    BrushPreset("Flat block-in", 64.0, 0.95, 1.0, False, 0.3),
)


def preset_named(name: str) -> BrushPreset:
    for p in PRESETS:
        if p.name == name:
            return p
    raise ValueError(f"unknown brush preset {name!r}; allowed: {', '.join(p.name for p in PRESETS)}")


def smoothed(
    previous: tuple[float, float], pointer: tuple[float, float], strength: float
) -> tuple[float, float]:
    """The next point of a stabilised stroke: it follows the pointer by a share that shrinks as
    `strength` (0..1) grows, like a pen pulled on a string; 0 gives the pointer itself."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"smoothing strength {strength!r} is outside 0..1")
    # Squared, so the upper half of the slider is where the strong stabilising lives, as painters expect.
    follow = 0.03 + 0.97 * (1.0 - strength) ** 2
    return (
        previous[0] + (pointer[0] - previous[0]) * follow,
        previous[1] + (pointer[1] - previous[1]) * follow,
    )
