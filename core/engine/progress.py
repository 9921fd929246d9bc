"""Per-step progress reports; the caller decides whether to turn one into a preview image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Progress:
    """One step of one run. `preview()` is computed only when asked, so skipping previews costs nothing.

    `box` is (x, y, w, h) of the region being generated inside the full image; `preview()` returns an
    RGB uint8 array of that region (the x0 prediction, already composited with the mask over the guide).
    """

    step: int  # 1-based, over all repeats and variations of this run
    total: int
    variation: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    stage: str = "denoise"  # "invert" or "denoise"
    _render: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def preview(self) -> np.ndarray | None:
        return None if self._render is None else self._render()


ProgressCallback = Callable[[Progress], None]

StopCheck = Callable[[], bool]
"""Asked often during a run (inside model blocks and long loops); True means the user wants it stopped."""


def stop_checker(should_stop: StopCheck | None) -> Callable[[], None]:
    """A function that raises `Cancelled` once `should_stop()` says so; does nothing without one."""
    from noisebrush.core.errors import Cancelled

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled()

    return check
