"""One brush stroke on one array: dabs along a path, never building up within the stroke. No Qt here.

A stroke keeps a coverage map (the most any dab has covered each pixel) and the pixels as they were
before the stroke, copied tile by tile on first touch, so each dab costs only its own box and the
finished stroke hands back the bounding box with the old and new pixels of that box alone.

Those two layer-sized arrays cost nothing where a stroke does not reach (`lazy_zeros`), and they are
kept for the next stroke on a target of the same size, so later strokes neither map fresh memory nor
hand it back.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .layer import lazy_zeros
from .pixels import Box, dab_alpha, dab_box, erase, intersect, paint_over, region_of, union

TILE = 128
SPARE_SETS = 2  # layer pixels and the selection mask: the two kinds of target a stroke paints

# (shape, dtype) -> (coverage, before), the coverage all zero again; most recently used last.
_spares: OrderedDict[tuple[tuple[int, ...], str], tuple[np.ndarray, np.ndarray]] = OrderedDict()


def _take_work_arrays(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    spare = _spares.pop((target.shape, target.dtype.str), None)
    if spare is not None:
        return spare
    return lazy_zeros(target.shape[:2], np.float32), lazy_zeros(target.shape, target.dtype)


def _give_back_work_arrays(
    target: np.ndarray, coverage: np.ndarray, before: np.ndarray, box: Box | None
) -> None:
    if box is not None:
        x, y, w, h = box
        coverage[y : y + h, x : x + w] = 0.0  # the stroke covered nothing outside its box
    _spares[(target.shape, target.dtype.str)] = (coverage, before)
    while len(_spares) > SPARE_SETS:
        _spares.popitem(last=False)


@dataclass
class BrushDab:
    """What one dab needs; `radius` and `opacity` are already scaled by pressure."""

    x: float
    y: float
    radius: float
    opacity: float


class Stroke:
    """Paints (or erases, or selects) into `target` in place.

    target: (h, w, 4) uint8 layer pixels, or (h, w) uint8 selection mask.
    mode: "paint", "erase" for layers; "add", "subtract" for masks.
    clip: optional uint8 (H, W) selection mask in document coordinates; `offset` is the target's
    position in the document.
    """

    def __init__(
        self,
        target: np.ndarray,
        mode: str,
        color: Sequence[int] = (0, 0, 0, 255),
        hardness: float = 0.8,
        clip: np.ndarray | None = None,
        offset: tuple[int, int] = (0, 0),
    ) -> None:
        if mode not in ("paint", "erase", "add", "subtract"):
            raise ValueError(f"unknown stroke mode {mode!r}")
        self.target = target
        self.mode = mode
        self.color = tuple(int(c) for c in color)
        self.hardness = hardness
        self.clip = clip
        self.offset = offset
        h, w = target.shape[:2]
        self.coverage, self.before = _take_work_arrays(target)
        self.saved = np.zeros((-(-h // TILE), -(-w // TILE)), bool)
        self.box: Box | None = None
        self._last: BrushDab | None = None

    def _save(self, box: Box) -> None:
        x, y, w, h = box
        ty0, ty1 = y // TILE, (y + h - 1) // TILE + 1
        tx0, tx1 = x // TILE, (x + w - 1) // TILE + 1
        todo = ~self.saved[ty0:ty1, tx0:tx1]
        if not todo.any():
            return
        for j, i in zip(*np.nonzero(todo), strict=True):
            sy, sx = (ty0 + j) * TILE, (tx0 + i) * TILE
            self.before[sy : sy + TILE, sx : sx + TILE] = self.target[sy : sy + TILE, sx : sx + TILE]
        self.saved[ty0:ty1, tx0:tx1] = True

    def _cover(self, d: BrushDab) -> Box | None:
        """Add one dab to the coverage map; returns its box in target coordinates, or None."""
        h, w = self.target.shape[:2]
        box = intersect(dab_box(d.x, d.y, d.radius), (0, 0, w, h))
        if box is None or d.opacity <= 0:
            return None
        x, y, bw, bh = box
        a = dab_alpha(box, d.x, d.y, d.radius, self.hardness) * d.opacity
        cov = self.coverage[y : y + bh, x : x + bw]
        np.maximum(cov, a, out=cov)
        return box

    def _render(self, box: Box) -> None:
        """Recompute the target over `box` from the pixels before the stroke and the coverage."""
        self._save(box)
        x, y, bw, bh = box
        alpha = self.coverage[y : y + bh, x : x + bw]
        if self.clip is not None:
            ox, oy = self.offset
            alpha = alpha * region_of(self.clip, (x + ox, y + oy, bw, bh))
        before = self.before[y : y + bh, x : x + bw]
        out = self.target[y : y + bh, x : x + bw]
        if self.mode == "paint":
            out[...] = paint_over(before, self.color, alpha)
        elif self.mode == "erase":
            out[...] = erase(before, alpha)
        elif self.mode == "add":
            out[...] = np.maximum(before, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8))
        else:
            out[...] = np.minimum(before, np.clip((1.0 - alpha) * 255.0 + 0.5, 0, 255).astype(np.uint8))
        self.box = box if self.box is None else union(self.box, box)

    def dab(self, d: BrushDab) -> Box | None:
        """Lay one dab; returns the changed box in target coordinates, or None."""
        box = self._cover(d)
        if box is not None:
            self._render(box)
        return box

    def line_to(self, d: BrushDab) -> Box | None:
        """Dabs from the previous point to `d`, spaced a fraction of the radius apart. The pixels are
        recomputed once over all of them: consecutive dabs overlap most of their boxes."""
        last = self._last
        self._last = d
        if last is None:
            return self.dab(d)
        dist = math.hypot(d.x - last.x, d.y - last.y)
        spacing = max(1.0, 0.15 * min(d.radius, last.radius) * 2)
        n = max(1, int(dist / spacing))
        changed: Box | None = None
        for k in range(1, n + 1):
            t = k / n
            b = self._cover(
                BrushDab(
                    last.x + (d.x - last.x) * t,
                    last.y + (d.y - last.y) * t,
                    last.radius + (d.radius - last.radius) * t,
                    last.opacity + (d.opacity - last.opacity) * t,
                )
            )
            changed = union(changed, b)
        if changed is not None:
            self._render(changed)
        return changed

    def finish(self) -> tuple[Box, np.ndarray, np.ndarray] | None:
        """(box, old, new) of everything this stroke changed, in target coordinates; None if nothing."""
        if self.before.size == 0:  # finished already
            return None
        done = None
        if self.box is not None:
            # The box spans tiles no dab reached (a diagonal stroke's corners): their `before` holds
            # zeros or an earlier stroke's pixels. The target is still unchanged there, so save it now.
            self._save(self.box)
            x, y, w, h = self.box
            done = (
                self.box,
                self.before[y : y + h, x : x + w].copy(),
                self.target[y : y + h, x : x + w].copy(),
            )
        _give_back_work_arrays(self.target, self.coverage, self.before, self.box)
        self.coverage = self.before = np.zeros((0, 0), np.float32)
        return done

    def abort(self) -> Box | None:
        """Put back the pixels as they were before the stroke."""
        done = self.finish()
        if done is None:
            return None
        (x, y, w, h), old, _ = done
        self.target[y : y + h, x : x + w] = old
        return done[0]
