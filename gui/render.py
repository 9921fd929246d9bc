"""Cached composite tiles for the canvas: only visible tiles are built, at a level of detail matching
the zoom (level L samples every 2^L-th pixel), and only the tiles a change touches are rebuilt."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import cast

import numpy as np
from PyQt6.QtGui import QImage

from .model.pixels import Box

TILE = 256
MAX_TILES = 512  # 512 tiles of 256 KiB = 128 MiB

Builder = Callable[[Box, int], np.ndarray | None]  # (document box, step) -> premultiplied RGBA8 or None
PATCH_MAX_AREA = 512 * 512  # changes smaller than this are patched into cached tiles in place


def array_image(arr: np.ndarray, fmt: QImage.Format) -> QImage:
    """A QImage over the bytes of `arr` (C-contiguous rows of pixels), not a copy of them: keep `arr`
    alive as long as the image, or copy the image."""
    h, w = arr.shape[:2]
    # PyQt views any buffer here; its stubs say bytes, and a bytes copy would no longer see writes to arr
    return QImage(cast(bytes, arr.data), w, h, arr.strides[0], fmt)


def tile_box(level: int, tx: int, ty: int) -> Box:
    span = TILE << level
    return (tx * span, ty * span, span, span)


class TileCache:
    """LRU cache of QImages (premultiplied RGBA8) keyed by (level, tx, ty)."""

    def __init__(self, build: Builder, max_tiles: int = MAX_TILES) -> None:
        self._build = build
        self._tiles: OrderedDict[tuple[int, int, int], tuple[QImage, np.ndarray] | None] = OrderedDict()
        self.max_tiles = max_tiles
        self.builds = 0

    def get(self, level: int, tx: int, ty: int) -> QImage | None:
        key = (level, tx, ty)
        if key in self._tiles:
            self._tiles.move_to_end(key)
            hit = self._tiles[key]
            return None if hit is None else hit[0]
        arr = self._build(tile_box(level, tx, ty), 1 << level)
        self.builds += 1
        entry = None
        if arr is not None:
            arr = np.ascontiguousarray(arr)
            img = array_image(arr, QImage.Format.Format_RGBA8888_Premultiplied)
            entry = (img, arr)  # the array owns the bytes the QImage views
        self._tiles[key] = entry
        while len(self._tiles) > self.max_tiles:
            self._tiles.popitem(last=False)
        return None if entry is None else entry[0]

    def patch(self, box: Box, level: int | None = None) -> None:
        """Rebuild only `box` inside the cached tiles it touches, writing into their pixels in place
        (the QImages view those arrays), so a brush dab costs its own size, not a tile's. Given the
        `level` on screen, tiles of other levels are dropped instead: rebuilt if the view goes there,
        never paid for on every dab."""
        x, y, w, h = box
        for key, entry in list(self._tiles.items()):
            if entry is None or not _touches(key, x, y, w, h):
                continue
            if level is not None and key[0] != level:
                del self._tiles[key]
                continue
            tile_level, tx, ty = key
            step, span = 1 << tile_level, TILE << tile_level
            ox, oy = tx * span, ty * span
            arr = entry[1]
            # Sample positions ox + i*step that fall inside the box.
            i0 = max(0, -((ox - x) // step))
            j0 = max(0, -((oy - y) // step))
            i1 = min(arr.shape[1], -((ox - (x + w)) // step))
            j1 = min(arr.shape[0], -((oy - (y + h)) // step))
            if i1 <= i0 or j1 <= j0:
                continue
            sub = (ox + i0 * step, oy + j0 * step, (i1 - i0) * step, (j1 - j0) * step)
            part = self._build(sub, step)
            if part is None:
                del self._tiles[key]
                continue
            arr[j0:j1, i0:i1] = part[: j1 - j0, : i1 - i0]

    def invalidate(self, box: Box | None = None) -> None:
        if box is None:
            self._tiles.clear()
            return
        x, y, w, h = box
        for key in [k for k in self._tiles if _touches(k, x, y, w, h)]:
            del self._tiles[key]


def _touches(key: tuple[int, int, int], x: int, y: int, w: int, h: int) -> bool:
    level, tx, ty = key
    span = TILE << level
    return tx * span < x + w and x < (tx + 1) * span and ty * span < y + h and y < (ty + 1) * span
