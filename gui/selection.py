"""The selection: an observable uint8 mask over the document (255 = selected, soft values feather)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from .model.pixels import Box, nonzero_box


class Selection(QObject):
    """An all-zero mask means "nothing selected", which tools and generation read as "everywhere"."""

    changed = pyqtSignal(object)  # document box that changed, or None for all of it

    def __init__(self, width: int, height: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mask = np.zeros((height, width), np.uint8)
        self._bounds: Box | None = None
        self._bounds_valid = True

    def reset(self, width: int, height: int) -> None:
        self.mask = np.zeros((height, width), np.uint8)
        self._bounds, self._bounds_valid = None, True
        self.changed.emit(None)

    @property
    def bounds(self) -> Box | None:
        """Bounding box of the selected pixels; None when nothing is selected."""
        if not self._bounds_valid:
            self._bounds = nonzero_box(self.mask)
            self._bounds_valid = True
        return self._bounds

    @property
    def is_empty(self) -> bool:
        return self.bounds is None

    def clip(self) -> np.ndarray | None:
        """The mask to clip painting with, or None when nothing is selected."""
        return None if self.is_empty else self.mask

    def write(self, box: Box, values: np.ndarray) -> None:
        """Low level, for undo commands: put `values` into the mask at `box`."""
        x, y, w, h = box
        self.mask[y : y + h, x : x + w] = values
        self._bounds_valid = False
        self.changed.emit(box)

    def touched(self, box: Box | None) -> None:
        """Announce that a stroke changed the mask in place."""
        self._bounds_valid = False
        self.changed.emit(box)
