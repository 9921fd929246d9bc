"""Marching ants: the selection's outline, drawn with black and white dashes that move.

The outline runs along pixel edges where the mask crosses 50 %, oriented clockwise around what is
selected, so the dashes march the same way round every shape. It is traced per 256 px tile, only for
tiles on screen and again only where the selection changed, so a mask-brush dab on a big canvas
re-traces one tile. A cosmetic pen keeps the dashes one screen pixel wide at any zoom; a timer steps
their offset and repaints only the strips around the outline, and runs only while there is a
selection to show.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QRegion, QTransform

from .model.pixels import Box, intersect
from .selection import Selection

TILE = 256
STEP_MS = 120  # GIMP and Krita march at roughly this pace
DASH = 4  # pixels of black, then of white


def outline_segments(mask: np.ndarray, box: Box) -> np.ndarray:
    """(n, 4) int32 segments (x0, y0, x1, y1) in mask coordinates along the pixel edges where
    `mask >= 128` changes, each running with the selected side on its right (clockwise on screen).
    Only the edges that belong to `box`: horizontal ones on its rows, vertical ones on its columns,
    and the mask's far borders to the tile touching them."""
    x, y, w, h = box
    height, width = mask.shape
    inside = np.zeros((h + 2, w + 2), bool)  # one pixel of context on each side, outside the mask = out
    inner = intersect((x - 1, y - 1, w + 2, h + 2), (0, 0, width, height))
    if inner is not None:
        ix, iy, iw, ih = inner
        inside[iy - y + 1 : iy - y + 1 + ih, ix - x + 1 : ix - x + 1 + iw] = (
            mask[iy : iy + ih, ix : ix + iw] >= 128
        )
    if inside.all() or not inside.any():  # deep inside or far outside: most tiles of a big selection
        return np.empty((0, 4), np.int32)
    rows = h + (y + h >= height)  # the bottom border of the mask belongs to the last tile
    cols = w + (x + w >= width)
    above, below = inside[:rows, 1:-1], inside[1 : rows + 1, 1:-1]  # edge i lies on y + i
    left, right = inside[1:-1, :cols], inside[1:-1, 1 : cols + 1]  # edge j lies on x + j
    parts = []
    i, s, e = _runs(below & ~above)  # inside below: run rightwards
    parts.append(np.stack([x + s, y + i, x + e, y + i], axis=1))
    i, s, e = _runs(above & ~below)  # inside above: run leftwards
    parts.append(np.stack([x + e, y + i, x + s, y + i], axis=1))
    j, s, e = _runs((right & ~left).T)  # inside on the right: run upwards
    parts.append(np.stack([x + j, y + e, x + j, y + s], axis=1))
    j, s, e = _runs((left & ~right).T)  # inside on the left: run downwards
    parts.append(np.stack([x + j, y + s, x + j, y + e], axis=1))
    return np.concatenate(parts).astype(np.int32)


def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of each run of True along the rows of a 2-D boolean array."""
    n, m = rows.shape
    padded = np.zeros((n, m + 2), np.int8)
    padded[:, 1:-1] = rows
    step = np.diff(padded, axis=1)
    r, s = np.nonzero(step == 1)
    _, e = np.nonzero(step == -1)  # row-major order pairs each end with its start
    return r, s, e


def chain(segments: np.ndarray) -> list[list[tuple[int, int]]]:
    """Join oriented segments end to start into polylines, so the dashes run on round corners
    instead of starting afresh at each one. Loops come back to their first point; pieces cut by a
    tile border stay open."""
    seg: list[list[int]] = segments.tolist()
    starting: dict[tuple[int, int], list[int]] = {}
    for n, (x0, y0, _, _) in enumerate(seg):
        starting.setdefault((x0, y0), []).append(n)
    ends = {(x1, y1) for _, _, x1, y1 in seg}
    used = [False] * len(seg)
    # Open pieces first, from the points nothing runs into; whatever is left then is loops.
    order = [n for n, (x0, y0, _, _) in enumerate(seg) if (x0, y0) not in ends]
    lines: list[list[tuple[int, int]]] = []
    for first in [*order, *range(len(seg))]:
        if used[first]:
            continue
        line = [(seg[first][0], seg[first][1])]
        k: int | None = first
        while k is not None:
            used[k] = True
            point = (seg[k][2], seg[k][3])
            line.append(point)
            k = next((n for n in starting.get(point, ()) if not used[n]), None)
        lines.append(line)
    return lines


class MarchingAnts(QObject):
    """The outline of one Selection; the canvas paints it and repaints `moved`'s region."""

    moved = pyqtSignal()  # the dashes stepped: repaint `region(...)`

    def __init__(self, selection: Selection, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.selection = selection
        self.phase = 0
        self.timer = QTimer(self)
        self.timer.setInterval(STEP_MS)
        self.timer.timeout.connect(self._step)
        self._tiles: dict[tuple[int, int], QPainterPath] = {}
        self._white = QPen(QColor(255, 255, 255), 1.0)
        self._white.setCosmetic(True)
        self._black = QPen(QColor(0, 0, 0), 1.0)
        self._black.setCosmetic(True)
        self._black.setDashPattern([DASH, DASH])
        self._shown = True
        self._check_pending = False
        selection.changed.connect(self._changed)

    def set_shown(self, shown: bool) -> None:
        """A hidden canvas needs no ants."""
        self._shown = shown
        self._check()

    def _changed(self, box: Box | None) -> None:
        if box is None:
            self._tiles.clear()
        else:
            x, y, w, h = box
            # A change moves edges up to one pixel past its box, into the next tile at most.
            for ty in range((y - 1) // TILE, (y + h) // TILE + 1):
                for tx in range((x - 1) // TILE, (x + w) // TILE + 1):
                    self._tiles.pop((tx, ty), None)
        if not self._check_pending:  # once per pass of the event loop, not once per brush dab
            self._check_pending = True
            QTimer.singleShot(0, self._check)

    def _check(self) -> None:
        self._check_pending = False
        on = self._shown and not self.selection.is_empty
        if on and not self.timer.isActive():
            self.timer.start()
        elif not on and self.timer.isActive():
            self.timer.stop()

    def _step(self) -> None:
        self.phase = (self.phase + 1) % (2 * DASH)
        self.moved.emit()

    def _tile(self, tx: int, ty: int) -> QPainterPath:
        path = self._tiles.get((tx, ty))
        if path is None:
            path = QPainterPath()
            for line in chain(outline_segments(self.selection.mask, (tx * TILE, ty * TILE, TILE, TILE))):
                path.moveTo(*line[0])
                for point in line[1:]:
                    path.lineTo(*point)
            self._tiles[(tx, ty)] = path
        return path

    def _paths(self, area: Box) -> list[QPainterPath]:
        """Outline pieces of the tiles that meet `area` (document coordinates)."""
        bounds = self.selection.bounds
        if bounds is None:
            return []
        x0, y0, w0, h0 = bounds
        inner = intersect(area, (x0 - 1, y0 - 1, w0 + 2, h0 + 2))
        if inner is None:
            return []
        x, y, w, h = inner
        paths = (
            self._tile(tx, ty)
            for ty in range(y // TILE, (y + h - 1) // TILE + 1)
            for tx in range(x // TILE, (x + w - 1) // TILE + 1)
        )
        return [p for p in paths if not p.isEmpty()]

    def region(self, view: QTransform, area: Box) -> QRegion:
        """Widget pixels the outline covers inside `area`: what a step has to repaint."""
        region = QRegion()
        for path in self._paths(area):
            rect = view.mapRect(path.boundingRect())
            region = region.united(rect.toAlignedRect().adjusted(-1, -1, 2, 2))
        return region

    def paint(self, p: QPainter, view: QTransform, area: Box) -> None:
        """Draw the outline inside `area` (document coordinates); `view` maps document to widget."""
        paths = self._paths(area)
        if not paths:
            return
        mapped = [view.map(path) for path in paths]  # mapped, not transformed: pens stay screen pixels
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setBrush(QBrush())
        p.setPen(self._white)
        for path in mapped:
            p.drawPath(path)
        self._black.setDashOffset(-self.phase)
        p.setPen(self._black)
        for path in mapped:
            p.drawPath(path)
        p.restore()
