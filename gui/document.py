"""The painting document: layers, the active and selected layers, the selection and the undo history.

Widgets read from it and call its verbs; every change that the user can undo goes through its
QUndoStack. Methods with a leading underscore are the low-level edits the undo commands call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QUndoCommand, QUndoStack

from .commands import (
    AddLayerCommand,
    LayerPropertyCommand,
    MoveLayerCommand,
    PixelsCommand,
    RemoveLayerCommand,
    ResizeLayerCommand,
    SelectionCommand,
)
from .model.layer import Layer
from .model.pixels import Box, changed_box, composite, crop, union


class Document(QObject):
    layers_changed = pyqtSignal()  # order, membership or properties of layers
    pixels_changed = pyqtSignal(object)  # document box, or None for everything
    layer_pixels_changed = pyqtSignal(object)  # the Layer whose pixels changed
    active_changed = pyqtSignal()
    reset = pyqtSignal()  # a new or opened document replaced the old one
    path_changed = pyqtSignal()

    def __init__(self, width: int = 1024, height: int = 768, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from .selection import Selection

        self.width, self.height = width, height
        self.layers: list[Layer] = []
        self.active: Layer | None = None
        self.selected: set[int] = set()  # uids of the layers picked for batch work
        self.selection = Selection(width, height, self)
        self.undo_stack = QUndoStack(self)
        self.path: str | None = None
        self._new_layer_count = 0
        self.load(width, height, [Layer("Background", _white(width, height))], None)

    # --- whole-document -----------------------------------------------------------------------

    def load(self, width: int, height: int, layers: Sequence[Layer], path: str | None) -> None:
        """Replace everything (new or opened document); clears the history."""
        self.undo_stack.clear()
        self.width, self.height = width, height
        self.layers = list(layers)
        self.active = self.layers[-1] if self.layers else None
        self.selected = {self.active.uid} if self.active else set()
        self._new_layer_count = len(self.layers)
        self.selection.reset(width, height)
        self.path = path
        self.undo_stack.setClean()
        self.reset.emit()
        self.layers_changed.emit()
        self.active_changed.emit()
        self.pixels_changed.emit(None)
        self.path_changed.emit()

    def new(self, width: int, height: int) -> None:
        self.load(width, height, [Layer("Background", _white(width, height))], None)

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, path: str) -> None:
        self.path = path
        self.undo_stack.setClean()
        self.path_changed.emit()

    @property
    def rect(self) -> Box:
        return (0, 0, self.width, self.height)

    def composite(self, box: Box | None = None) -> np.ndarray:
        """Straight-alpha RGBA8 of what is visible, over `box` (default: the whole canvas)."""
        return composite(self.layers, box or self.rect)

    # --- active and selected layers -----------------------------------------------------------

    def set_active(self, layer: Layer | None, selected: set[int] | None = None) -> None:
        self.active = layer
        self.selected = selected if selected is not None else ({layer.uid} if layer else set())
        if layer is not None:
            self.selected.add(layer.uid)
        self.active_changed.emit()

    def selected_layers(self) -> list[Layer]:
        """The layers picked for batch work, bottom first (always includes the active one)."""
        return [la for la in self.layers if la.uid in self.selected or la is self.active]

    def index_of(self, layer: Layer) -> int:
        return self.layers.index(layer)

    # --- verbs (undoable) ---------------------------------------------------------------------

    def next_layer_name(self, base: str = "Layer") -> str:
        self._new_layer_count += 1
        return f"{base} {self._new_layer_count}"

    def add_layer(self, name: str | None = None) -> Layer:
        layer = Layer.blank(name or self.next_layer_name(), self.width, self.height)
        index = self.index_of(self.active) + 1 if self.active in self.layers else len(self.layers)
        self.undo_stack.push(AddLayerCommand(self, layer, index))
        return layer

    def insert_layer(self, layer: Layer, index: int, text: str = "New layer") -> None:
        self.undo_stack.push(AddLayerCommand(self, layer, index, text))

    def delete_layer(self, layer: Layer) -> None:
        if len(self.layers) <= 1:
            return
        self.undo_stack.push(RemoveLayerCommand(self, layer))

    def duplicate_layer(self, layer: Layer) -> Layer:
        dup = layer.copy(f"{layer.name} copy")
        self.undo_stack.push(AddLayerCommand(self, dup, self.index_of(layer) + 1, "Duplicate layer"))
        return dup

    def move_layer(self, layer: Layer, index: int) -> None:
        index = max(0, min(index, len(self.layers) - 1))
        if index != self.index_of(layer):
            self.undo_stack.push(MoveLayerCommand(self, layer, index))

    def set_layer_property(self, layer: Layer, prop: str, value: Any) -> None:
        if getattr(layer, prop) != value:
            self.undo_stack.push(LayerPropertyCommand(self, layer, prop, value))

    def why_not_merge_down(self, layer: Layer) -> str | None:
        """Why `layer` cannot be merged down, or None when it can."""
        i = self.index_of(layer)
        if i == 0:
            return f"\u201c{layer.name}\u201d is the bottom layer: there is nothing below to merge into"
        below = self.layers[i - 1]
        if below.locked:
            return f"Layer \u201c{below.name}\u201d is locked"
        return None

    def merge_down(self, layer: Layer) -> bool:
        """Merge `layer` into the one below, in one undo step, so that the result shows exactly what
        the two showed (to 8-bit rounding): the upper is laid over the lower with both opacities baked
        into the pixels, and the result gets full opacity. A hidden layer shows nothing, so it adds
        nothing; two hidden layers merge as if shown and stay hidden. The lower layer grows to cover
        the upper one, so nothing outside the canvas is cut off. False if it cannot be merged."""
        if self.why_not_merge_down(layer) is not None:
            return False
        below = self.layers[self.index_of(layer) - 1]
        both_hidden = not (below.visible or layer.visible)
        upper_shows = layer.visible or both_hidden
        lower_shows = below.visible or both_hidden
        # The lower layer's pixels change under the upper one; all of them when its own opacity is
        # baked in, or when it was hidden and only the upper one's pixels remain. A hidden upper
        # layer changes nothing.
        area: Box | None = None
        if upper_shows:
            area = layer.rect
            if not lower_shows or below.opacity < 1.0:
                area = union(area, below.rect)
        self.undo_stack.beginMacro("Merge down")
        if area is not None:
            self.ensure_covers(below, area)
            parts = [_shown(la) for la, shows in ((below, lower_shows), (layer, upper_shows)) if shows]
            merged = composite(parts, area)
            lbox = (area[0] - below.x, area[1] - below.y, area[2], area[3])
            self.commit_pixels(
                below, lbox, crop(below.pixels, lbox).copy(), merged, "Merge down", applied=False
            )
            self.set_layer_property(below, "opacity", 1.0)
            self.set_layer_property(below, "visible", not both_hidden)
        self.undo_stack.push(RemoveLayerCommand(self, layer, "Merge down"))
        self.undo_stack.endMacro()
        self.set_active(below)
        return True

    def ensure_covers(self, layer: Layer, box: Box) -> None:
        """Grow `layer` (undoably) so it covers `box` in document coordinates."""
        grown = union(layer.rect, box)
        if grown != layer.rect:
            self.undo_stack.push(ResizeLayerCommand(self, layer, grown))

    def grow_for_paint(self, layer: Layer) -> ResizeLayerCommand | None:
        """Grow `layer` to cover the canvas now, before a stroke; the returned command (already applied)
        goes into the stroke's undo step via `commit_stroke`."""
        grown = union(layer.rect, self.rect)
        if grown == layer.rect:
            return None
        cmd = ResizeLayerCommand(self, layer, grown)
        cmd.redo()
        cmd._skip = True
        return cmd

    def commit_stroke(
        self,
        layer: Layer,
        grow: ResizeLayerCommand | None,
        change: tuple[Box, np.ndarray, np.ndarray] | None,
        text: str,
    ) -> None:
        """One undo step for one stroke (or fill): the layer's growth, if any, and its changed box."""
        if grow is None and change is None:
            return
        parent = QUndoCommand(text)
        if grow is not None:
            ResizeLayerCommand(
                self, layer, grow.new_rect, applied=True, parent=parent
            ).old_rect = grow.old_rect
        if change is not None:
            box, old, new = change
            PixelsCommand(self, layer, box, old, new, text, True, parent)
        self.undo_stack.push(parent)

    def commit_pixels(
        self, layer: Layer, box: Box, old: np.ndarray, new: np.ndarray, text: str, applied: bool = True
    ) -> None:
        """Record a change of `layer`'s pixels in `box` (layer coordinates). With applied=True the
        pixels are already in place (a finished stroke); otherwise they are written now."""
        self.undo_stack.push(PixelsCommand(self, layer, box, old, new, text, applied))

    def set_selection(self, mask: np.ndarray, text: str) -> None:
        """Replace the selection mask, recording only the changed box."""
        old = self.selection.mask
        box = changed_box(old, mask)
        if box is None:
            return
        self.undo_stack.push(
            SelectionCommand(self, box, crop(old, box).copy(), crop(mask, box).copy(), text, False)
        )

    def commit_selection_stroke(self, box: Box, old: np.ndarray, new: np.ndarray) -> None:
        self.undo_stack.push(SelectionCommand(self, box, old, new, "Mask brush", True))

    # --- low level, for commands --------------------------------------------------------------

    def _insert_layer(self, layer: Layer, index: int) -> None:
        self.layers.insert(index, layer)
        self.layers_changed.emit()
        self.pixels_changed.emit(layer.rect)
        self.set_active(layer)

    def _remove_layer(self, layer: Layer) -> None:
        i = self.index_of(layer)
        self.layers.pop(i)
        self.selected.discard(layer.uid)
        self.layers_changed.emit()
        self.pixels_changed.emit(layer.rect)
        if self.active is layer:
            self.set_active(self.layers[max(0, i - 1)] if self.layers else None)

    def _move_layer(self, layer: Layer, index: int) -> None:
        self.layers.remove(layer)
        self.layers.insert(index, layer)
        self.layers_changed.emit()
        self.pixels_changed.emit(layer.rect)

    def _set_property(self, layer: Layer, prop: str, value: Any) -> None:
        setattr(layer, prop, value)
        self.layers_changed.emit()
        if prop in ("visible", "opacity", "blend"):
            self.pixels_changed.emit(layer.rect)

    def _set_geometry(self, layer: Layer, pixels: np.ndarray, x: int, y: int) -> None:
        old = layer.rect
        layer.pixels, layer.x, layer.y = pixels, x, y
        self.pixels_changed.emit(union(old, layer.rect))
        self.layer_pixels_changed.emit(layer)

    def _write_pixels(self, layer: Layer, box: Box, values: np.ndarray) -> None:
        x, y, w, h = box
        layer.pixels[y : y + h, x : x + w] = values
        self.touched(layer, box)

    def touched(self, layer: Layer, box: Box | None) -> None:
        """Announce that `layer`'s pixels changed in `box` (layer coordinates) in place."""
        if box is not None:
            self.pixels_changed.emit((box[0] + layer.x, box[1] + layer.y, box[2], box[3]))
        self.layer_pixels_changed.emit(layer)


def _white(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 4), 255, np.uint8)


def _shown(layer: Layer) -> Layer:
    """`layer` as the canvas composites it when shown: same pixels, place and opacity."""
    return Layer(
        layer.name, layer.pixels, layer.x, layer.y, layer.opacity, True, False, layer.uid, layer.blend
    )
