"""Undo commands that place a layer anew: a move (same pixels, new offset) or a transform (new pixels
and offset). Kept apart from commands.py, which holds the stroke, selection and layer-list commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtGui import QUndoCommand

if TYPE_CHECKING:
    from .document import Document
    from .model.layer import Layer

Placed = tuple[np.ndarray, int, int]  # pixels, x, y


class PlaceLayerCommand(QUndoCommand):
    """The layer's pixels and offset before and after. A move shares one pixel array between the two,
    so it costs two offsets; a transform keeps both arrays (the layer's own size, not the canvas)."""

    def __init__(
        self,
        doc: Document,
        layer: Layer,
        before: Placed,
        after: Placed,
        text: str,
        applied: bool = True,
    ) -> None:
        super().__init__(text)
        self.doc, self.layer, self.before, self.after = doc, layer, before, after
        self._skip = applied  # the tool already shows the result: the first redo has nothing to do

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self.doc._set_geometry(self.layer, *self.after)

    def undo(self) -> None:
        self.doc._set_geometry(self.layer, *self.before)


def placed(layer: Layer) -> Placed:
    return (layer.pixels, layer.x, layer.y)
