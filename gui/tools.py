"""Canvas tools: brush, eraser, colour pick, fill, and the selection tools (rectangle, ellipse, lasso,
mask brush). A tool turns pointer events into document verbs; one stroke or click is one undo step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPainterPath, QPen

from .document import Document
from .model.brushes import smoothed
from .model.layer import Layer
from .model.pixels import Box, crop, flood_region, nonzero_box, paint_over, region_of, shape_mask
from .model.stroke import BrushDab, Stroke
from .toolstate import ToolState

if TYPE_CHECKING:
    from .commands import ResizeLayerCommand


class View(Protocol):
    """What a tool's overlay needs of the canvas that shows it (canvas.py's Canvas is one); a protocol, so
    tools and the canvas, which calls them, do not import each other."""

    scale: float

    def to_widget(self, p: QPointF) -> QPointF: ...

    def update(self) -> None: ...


@dataclass
class ToolEvent:
    x: float  # document coordinates
    y: float
    pressure: float
    buttons: Qt.MouseButton
    modifiers: Qt.KeyboardModifier


class Tool:
    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None]) -> None:
        self.doc, self.state, self.notify = doc, state, notify

    def press(self, e: ToolEvent) -> None: ...

    def move(self, e: ToolEvent) -> None: ...

    def release(self, e: ToolEvent) -> None: ...

    def cancel(self) -> None: ...

    def paint_overlay(self, p: QPainter, canvas: View) -> None: ...

    def busy(self) -> bool:
        """Whether the tool holds work in progress that undo should throw away first."""
        return False

    def leave(self) -> None:
        """Another tool was chosen."""
        self.cancel()

    def wants_key(self, key: int) -> bool:
        """Whether the tool takes `key` (a Qt.Key) before the window's shortcuts do."""
        return False

    def key(self, key: int) -> bool:
        return False

    def paintable_layer(self) -> Layer | None:
        layer = self.doc.active
        if layer is None:
            self.notify("No layer to paint on: add a layer first")
        elif layer.locked:
            self.notify(f"Layer \u201c{layer.name}\u201d is locked")
        elif not layer.visible:
            self.notify(f"Layer \u201c{layer.name}\u201d is hidden: show it to paint on it")
        else:
            return layer
        return None


def _rgba(color: QColor) -> tuple[int, int, int, int]:
    return (color.red(), color.green(), color.blue(), 255)


class BrushTool(Tool):
    """Round brush or eraser; pressure scales size and opacity when enabled."""

    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None], erase: bool) -> None:
        super().__init__(doc, state, notify)
        self.erase = erase
        self.stroke: Stroke | None = None
        self.layer: Layer | None = None
        self.grow: ResizeLayerCommand | None = None
        self.alpha: np.ndarray | None = None  # the layer's alpha before the stroke, when alpha-locked
        self.steady: tuple[float, float] | None = None  # where the smoothed stroke has got to

    def _keep_alpha(self, box: Box | None) -> Box | None:
        """With the layer's alpha locked, put its transparency back where the stroke just drew."""
        if box is not None and self.alpha is not None and self.layer is not None:
            crop(self.layer.pixels, box)[..., 3] = crop(self.alpha, box)
        return box

    def _steadied(self, e: ToolEvent) -> ToolEvent:
        """`e` moved to the smoothed stroke's next point (the pointer itself with smoothing off)."""
        if self.steady is None or self.state.smoothing <= 0:
            self.steady = (e.x, e.y)
        else:
            self.steady = smoothed(self.steady, (e.x, e.y), self.state.smoothing)
        return replace(e, x=self.steady[0], y=self.steady[1])

    def _dab(self, e: ToolEvent) -> BrushDab:
        assert self.layer is not None
        e = self._steadied(e)
        pressure = e.pressure if self.state.pressure else 1.0
        radius = self.state.size / 2 * (0.2 + 0.8 * pressure)
        return BrushDab(e.x - self.layer.x, e.y - self.layer.y, radius, self.state.opacity * pressure)

    def press(self, e: ToolEvent) -> None:
        layer = self.paintable_layer()
        if layer is None:
            return
        self.layer = layer
        self.grow = self.doc.grow_for_paint(layer)
        self.alpha = layer.pixels[..., 3].copy() if layer.alpha_locked else None
        self.stroke = Stroke(
            layer.pixels,
            "erase" if self.erase else "paint",
            _rgba(self.state.color),
            self.state.hardness,
            self.doc.selection.clip(),
            (layer.x, layer.y),
        )
        self.doc.touched(layer, self._keep_alpha(self.stroke.line_to(self._dab(e))))

    def move(self, e: ToolEvent) -> None:
        if self.stroke is not None and self.layer is not None:
            box = self._keep_alpha(self.stroke.line_to(self._dab(e)))
            if box is not None:
                self.doc.touched(self.layer, box)

    def release(self, e: ToolEvent) -> None:
        if self.stroke is None or self.layer is None:
            return
        self.move(e)
        change = self.stroke.finish()
        self.doc.commit_stroke(self.layer, self.grow, change, "Eraser" if self.erase else "Brush stroke")
        if not self.erase and change is not None:
            self.state.remember_color()
        self.stroke = self.layer = self.grow = self.alpha = self.steady = None

    def cancel(self) -> None:
        if self.stroke is not None and self.layer is not None:
            self.doc.touched(self.layer, self.stroke.abort())
            if self.grow is not None:
                self.grow.undo()
        self.stroke = self.layer = self.grow = self.alpha = self.steady = None


class PickerTool(Tool):
    """Takes the visible colour under the pointer as the brush colour."""

    def press(self, e: ToolEvent) -> None:
        self.move(e)

    def move(self, e: ToolEvent) -> None:
        x, y = int(e.x), int(e.y)
        if not (0 <= x < self.doc.width and 0 <= y < self.doc.height):
            return
        r, g, b, a = (int(v) for v in self.doc.composite((x, y, 1, 1))[0, 0])
        if a > 0:
            self.state.set_color(QColor(r, g, b))

    def release(self, e: ToolEvent) -> None:
        self.state.remember_color()


class FillTool(Tool):
    """Fills the connected area of similar colour on the active layer, inside the selection."""

    def press(self, e: ToolEvent) -> None:
        layer = self.paintable_layer()
        if layer is None or not (0 <= e.x < self.doc.width and 0 <= e.y < self.doc.height):
            return
        grow = self.doc.grow_for_paint(layer)
        lx, ly = int(e.x) - layer.x, int(e.y) - layer.y
        region = flood_region(layer.pixels, lx, ly, self.state.fill_tolerance)
        box = nonzero_box(region)
        if box is None:
            if grow is not None:
                grow.undo()
            return
        alpha = crop(region, box).astype(np.float32)
        clip = region_of(self.doc.selection.clip(), (box[0] + layer.x, box[1] + layer.y, box[2], box[3]))
        if clip is not None:
            alpha *= clip
        old = crop(layer.pixels, box).copy()
        new = paint_over(old, _rgba(self.state.color), alpha * self.state.opacity)
        if layer.alpha_locked:
            new[..., 3] = old[..., 3]
        crop(layer.pixels, box)[...] = new
        self.doc.touched(layer, box)
        self.doc.commit_stroke(layer, grow, (box, old, new), "Fill")
        self.state.remember_color()


class MaskBrushTool(Tool):
    """Paints the selection mask: adds, or removes with the subtract mode or Alt held."""

    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None]) -> None:
        super().__init__(doc, state, notify)
        self.stroke: Stroke | None = None

    def _dab(self, e: ToolEvent) -> BrushDab:
        pressure = e.pressure if self.state.pressure else 1.0
        return BrushDab(e.x, e.y, self.state.size / 2 * (0.2 + 0.8 * pressure), pressure)

    def press(self, e: ToolEvent) -> None:
        subtract = self.state.select_mode == "subtract" or bool(e.modifiers & Qt.KeyboardModifier.AltModifier)
        self.stroke = Stroke(
            self.doc.selection.mask, "subtract" if subtract else "add", hardness=self.state.hardness
        )
        self.doc.selection.touched(self.stroke.line_to(self._dab(e)))

    def move(self, e: ToolEvent) -> None:
        if self.stroke is not None:
            box = self.stroke.line_to(self._dab(e))
            if box is not None:
                self.doc.selection.touched(box)

    def release(self, e: ToolEvent) -> None:
        if self.stroke is None:
            return
        self.move(e)
        change = self.stroke.finish()
        self.stroke = None
        if change is not None:
            self.doc.commit_selection_stroke(*change)

    def cancel(self) -> None:
        if self.stroke is not None:
            self.doc.selection.touched(self.stroke.abort())
        self.stroke = None


class ShapeSelectTool(Tool):
    """Rectangle, ellipse or lasso selection. Shift adds, Alt (or Ctrl) subtracts, else the panel's mode."""

    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None], kind: str) -> None:
        super().__init__(doc, state, notify)
        self.kind = kind  # "rect", "ellipse" or "polygon"
        self.points: list[tuple[float, float]] = []
        self.canvas_update: Callable[[], None] = lambda: None

    def press(self, e: ToolEvent) -> None:
        self.points = [(e.x, e.y)]
        self.canvas_update()

    def move(self, e: ToolEvent) -> None:
        if not self.points:
            return
        if self.kind == "polygon":
            self.points.append((e.x, e.y))
        else:
            self.points = [self.points[0], (e.x, e.y)]
        self.canvas_update()

    def _mode(self, mods: Qt.KeyboardModifier) -> str:
        if mods & Qt.KeyboardModifier.ShiftModifier:
            return "add"
        if mods & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ControlModifier):
            return "subtract"
        return self.state.select_mode

    def release(self, e: ToolEvent) -> None:
        if not self.points:
            return
        self.move(e)
        points, self.points = self.points, []
        self.canvas_update()
        self.select(points, self._mode(e.modifiers))

    def select(self, points: list[tuple[float, float]], mode: str) -> None:
        """Apply the shape through `points` to the selection with `mode` (replace, add, subtract)."""
        shape = shape_mask((self.doc.width, self.doc.height), self.kind, points)
        old = self.doc.selection.mask
        if mode == "add":
            new = np.maximum(old, shape)
        elif mode == "subtract":
            new = np.minimum(old, 255 - shape)
        else:
            new = shape
        label = {"rect": "Rectangle select", "ellipse": "Ellipse select", "polygon": "Lasso select"}[
            self.kind
        ]
        self.doc.set_selection(new, label)

    def cancel(self) -> None:
        self.points = []
        self.canvas_update()

    def paint_overlay(self, p: QPainter, canvas: View) -> None:
        if len(self.points) < 2:
            return
        pts = [canvas.to_widget(QPointF(x, y)) for x, y in self.points]
        path = QPainterPath()
        if self.kind == "rect":
            path.addRect(QRectF(pts[0], pts[-1]).normalized())
        elif self.kind == "ellipse":
            path.addEllipse(QRectF(pts[0], pts[-1]).normalized())
        else:
            path.moveTo(pts[0])
            for q in pts[1:]:
                path.lineTo(q)
            path.closeSubpath()
        p.setBrush(QColor(80, 140, 255, 40))
        p.setPen(QPen(QColor(0, 0, 0), 1.0))
        p.drawPath(path)
        p.setPen(QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine))
        p.drawPath(path)
