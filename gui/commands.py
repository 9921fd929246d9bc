"""Undo commands. Pixel commands keep only the changed box with its old and new pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PyQt6.QtGui import QUndoCommand

from .model.layer import Layer, lazy_zeros
from .model.pixels import Box

if TYPE_CHECKING:
    from .selection import Selection


class Document(Protocol):
    """The document's edit verbs that undo commands replay (document.py's Document implements them). A
    protocol, so the document can build its commands without the two modules importing each other."""

    layers: list[Layer]
    selection: Selection

    def _insert_layer(self, layer: Layer, index: int) -> None: ...

    def _remove_layer(self, layer: Layer) -> None: ...

    def _move_layer(self, layer: Layer, index: int) -> None: ...

    def _set_property(self, layer: Layer, prop: str, value: Any) -> None: ...

    def _set_geometry(self, layer: Layer, pixels: np.ndarray, x: int, y: int) -> None: ...

    def _write_pixels(self, layer: Layer, box: Box, values: np.ndarray) -> None: ...


OPACITY_MERGE_ID = 1001


class PixelsCommand(QUndoCommand):
    """Old and new pixels of one box of one layer (box in layer coordinates)."""

    def __init__(
        self,
        doc: Document,
        layer: Layer,
        box: Box,
        old: np.ndarray,
        new: np.ndarray,
        text: str,
        applied: bool,
        parent: QUndoCommand | None = None,
    ) -> None:
        super().__init__(text, parent)
        self.doc, self.layer, self.box, self.old, self.new = doc, layer, box, old, new
        self._skip = applied

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self.doc._write_pixels(self.layer, self.box, self.new)

    def undo(self) -> None:
        self.doc._write_pixels(self.layer, self.box, self.old)


class SelectionCommand(QUndoCommand):
    """Old and new selection mask values over the changed box."""

    def __init__(
        self, doc: Document, box: Box, old: np.ndarray, new: np.ndarray, text: str, applied: bool
    ) -> None:
        super().__init__(text)
        self.doc, self.box, self.old, self.new = doc, box, old, new
        self._skip = applied

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            self.doc.selection.touched(self.box)
            return
        self.doc.selection.write(self.box, self.new)

    def undo(self) -> None:
        self.doc.selection.write(self.box, self.old)


class AddLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, index: int, text: str = "New layer") -> None:
        super().__init__(text)
        self.doc, self.layer, self.index = doc, layer, index

    def redo(self) -> None:
        self.doc._insert_layer(self.layer, self.index)

    def undo(self) -> None:
        self.doc._remove_layer(self.layer)


class RemoveLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, text: str = "Delete layer") -> None:
        super().__init__(text)
        self.doc, self.layer = doc, layer
        self.index = doc.layers.index(layer)

    def redo(self) -> None:
        self.doc._remove_layer(self.layer)

    def undo(self) -> None:
        self.doc._insert_layer(self.layer, self.index)


class MoveLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, index: int) -> None:
        super().__init__("Move layer")
        self.doc, self.layer, self.new = doc, layer, index
        self.old = doc.layers.index(layer)

    def redo(self) -> None:
        self.doc._move_layer(self.layer, self.new)

    def undo(self) -> None:
        self.doc._move_layer(self.layer, self.old)


class LayerPropertyCommand(QUndoCommand):
    """name, visible, opacity or locked; consecutive opacity changes of one layer merge into one step."""

    def __init__(self, doc: Document, layer: Layer, prop: str, value: Any) -> None:
        labels = {
            "name": "Rename layer",
            "visible": "Show/hide layer",
            "opacity": "Layer opacity",
            "locked": "Lock layer",
            "blend": "Blend mode",
            "alpha_locked": "Lock alpha",
        }
        super().__init__(labels[prop])
        self.doc, self.layer, self.prop = doc, layer, prop
        self.old, self.new = getattr(layer, prop), value

    def id(self) -> int:
        return OPACITY_MERGE_ID if self.prop == "opacity" else -1

    def mergeWith(self, other: QUndoCommand | None) -> bool:  # noqa: N802 (Qt's name)
        if (
            not isinstance(other, LayerPropertyCommand)
            or other.layer is not self.layer
            or other.prop != self.prop
        ):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc._set_property(self.layer, self.prop, self.new)

    def undo(self) -> None:
        self.doc._set_property(self.layer, self.prop, self.old)


class ResizeLayerCommand(QUndoCommand):
    """Grow a layer to `rect` (document coordinates) with transparent pixels, so paint can reach there.
    Undo crops back to the old rect; nothing but the two rects is stored."""

    def __init__(
        self,
        doc: Document,
        layer: Layer,
        rect: Box,
        applied: bool = False,
        parent: QUndoCommand | None = None,
    ) -> None:
        super().__init__("Grow layer", parent)
        self.doc, self.layer, self.new_rect = doc, layer, rect
        self.old_rect = layer.rect
        self._skip = applied

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        x, y, w, h = self.new_rect
        ox, oy, ow, oh = self.old_rect
        grown = lazy_zeros((h, w, 4))
        grown[oy - y : oy - y + oh, ox - x : ox - x + ow] = self.layer.pixels
        self.doc._set_geometry(self.layer, grown, x, y)

    def undo(self) -> None:
        x, y, _, _ = self.new_rect
        ox, oy, ow, oh = self.old_rect
        self.doc._set_geometry(
            self.layer, self.layer.pixels[oy - y : oy - y + oh, ox - x : ox - x + ow].copy(), ox, oy
        )
