"""A paint layer as plain data: RGBA8 pixels placed at an offset in the document (no Qt here)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

_ids = itertools.count(1)


@dataclass(eq=False)
class Layer:
    """One layer. `pixels` is (h, w, 4) uint8, straight (not premultiplied) alpha; (x, y) is its offset."""

    name: str
    pixels: np.ndarray = field(repr=False)
    x: int = 0
    y: int = 0
    opacity: float = 1.0
    visible: bool = True
    locked: bool = False
    uid: int = field(default_factory=lambda: next(_ids))

    @classmethod
    def blank(cls, name: str, width: int, height: int, x: int = 0, y: int = 0) -> Layer:
        return cls(name, np.zeros((height, width, 4), np.uint8), x, y)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) in document coordinates."""
        return (self.x, self.y, self.width, self.height)

    def copy(self, name: str | None = None) -> Layer:
        """A deep copy with a fresh uid."""
        return Layer(
            self.name if name is None else name,
            self.pixels.copy(),
            self.x,
            self.y,
            self.opacity,
            self.visible,
            self.locked,
        )
