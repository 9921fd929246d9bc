"""A paint layer as plain data: RGBA8 pixels placed at an offset in the document (no Qt here)."""

from __future__ import annotations

import itertools
import math
import mmap
from dataclasses import dataclass, field, replace

import numpy as np

_ids = itertools.count(1)


def lazy_zeros(shape: tuple[int, ...], dtype: type | np.dtype = np.uint8) -> np.ndarray:
    """np.zeros that the OS backs 4 KiB at a time, as painting first reaches it. Plain np.zeros of a
    big layer may get 2 MB huge pages, which the OS zeroes whole on first write: a stall of several
    milliseconds in the middle of a brush stroke each time it reaches a new band of rows."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advice is None or nbytes < 1 << 21:
        return np.zeros(shape, dtype)
    memory = mmap.mmap(-1, nbytes)  # anonymous memory reads as zeros
    try:
        memory.madvise(advice)
    except OSError:
        pass  # a kernel without transparent huge pages
    return np.frombuffer(memory, dtype).reshape(shape)


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
    blend: str = "svg:src-over"  # OpenRaster composite-op; see pixels.BLEND_MODES
    alpha_locked: bool = False  # painting keeps the layer's transparency as it is

    @classmethod
    def blank(cls, name: str, width: int, height: int, x: int = 0, y: int = 0) -> Layer:
        return cls(name, lazy_zeros((height, width, 4)), x, y)

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
            blend=self.blend,
            alpha_locked=self.alpha_locked,
        )

    def snapshot(self) -> Layer:
        """A copy of the pixels with every property, the same uid: what a file writer may own."""
        return replace(self, pixels=self.pixels.copy())
