"""Tools that place a layer: Move (V) drags the active layer; Transform (Ctrl+T) scales, rotates and
flips it with handles, previews on the canvas, and applies with Enter or cancels with Esc. One drag
or one applied transform is one undo step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF

from .document import Document
from .layer_commands import Placed, PlaceLayerCommand, placed
from .model.layer import Layer
from .model.pixels import crop
from .model.transform import Placement, content_box, transform_pixels
from .tools import Tool, ToolEvent, View
from .toolstate import ToolState

HANDLE_PX = 8  # how near (widget pixels) the pointer must be to grab a handle
SMOOTH_PREVIEW_MAX = 1024 * 1024  # bigger layers preview with nearest-neighbour while dragging
ROTATE_SNAP = 15.0  # degrees, with Shift held


def placeable_layer(tool: Tool) -> Layer | None:
    """The active layer if it may be moved: it exists, is shown and is not locked."""
    return tool.paintable_layer()


class MoveTool(Tool):
    """Drags the active layer by whole pixels; one drag is one undo step."""

    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None]) -> None:
        super().__init__(doc, state, notify)
        self.layer: Layer | None = None
        self.start: tuple[float, float] = (0.0, 0.0)
        self.before: Placed | None = None

    def press(self, e: ToolEvent) -> None:
        self.layer = placeable_layer(self)
        if self.layer is not None:
            self.start = (e.x, e.y)
            self.before = placed(self.layer)

    def move(self, e: ToolEvent) -> None:
        if self.layer is None or self.before is None:
            return
        pixels, x, y = self.before
        dx, dy = round(e.x - self.start[0]), round(e.y - self.start[1])
        if (self.layer.x, self.layer.y) != (x + dx, y + dy):
            self.doc._set_geometry(self.layer, pixels, x + dx, y + dy)

    def release(self, e: ToolEvent) -> None:
        if self.layer is None or self.before is None:
            return
        self.move(e)
        after = placed(self.layer)
        if after[1:] != self.before[1:]:
            self.doc.undo_stack.push(
                PlaceLayerCommand(self.doc, self.layer, self.before, after, "Move layer")
            )
        self.layer = self.before = None

    def busy(self) -> bool:
        return self.layer is not None

    def cancel(self) -> None:
        if self.layer is not None and self.before is not None:
            self.doc._set_geometry(self.layer, *self.before)
        self.layer = self.before = None


@dataclass
class _Session:
    layer: Layer
    before: Placed  # the layer as it was, for cancel and undo
    source: np.ndarray  # its content, cropped to where alpha is non-zero
    sx: int  # where that content lies in the document
    sy: int
    placement: Placement


@dataclass
class _Drag:
    kind: str  # "move", "scale" (corner, both axes), "scale-x", "scale-y", "rotate"
    start: tuple[float, float]  # document point where the drag began
    placement: Placement  # the placement when it began


class TransformTool(Tool):
    """Free transform of the active layer. Inside the box drags move it, corner handles scale it
    evenly, edge handles stretch one axis, outside the box rotates (Shift snaps to 15 degrees)."""

    def __init__(self, doc: Document, state: ToolState, notify: Callable[[str], None]) -> None:
        super().__init__(doc, state, notify)
        self.session: _Session | None = None
        self.drag: _Drag | None = None
        self.canvas: View | None = None
        self.on_change: Callable[[], None] = lambda: None  # tool options follow the session
        doc.reset.connect(self._forget)

    # --- session ------------------------------------------------------------------------------

    def begin(self) -> bool:
        """Start transforming the active layer; False (with a message) when there is nothing to do."""
        if self.session is not None:
            return True
        layer = placeable_layer(self)
        if layer is None:
            return False
        box = content_box(layer.pixels)
        if box is None:
            self.notify(f"Layer \u201c{layer.name}\u201d is empty: nothing to transform")
            return False
        x, y, w, h = box
        sx, sy = layer.x + x, layer.y + y
        self.session = _Session(
            layer, placed(layer), crop(layer.pixels, box).copy(), sx, sy, Placement(sx + w / 2, sy + h / 2)
        )
        self.notify("Transform: drag the handles; Enter applies, Esc cancels")
        self._show(smooth=True)
        return True

    def busy(self) -> bool:
        return self.session is not None

    def apply(self) -> None:
        """Make the previewed transform one undo step (nothing if it changes nothing)."""
        s = self.session
        if s is None:
            return
        self.session = self.drag = None
        if s.placement.is_identity:
            self.doc._set_geometry(s.layer, *s.before)
        else:
            after = transform_pixels(s.source, s.sx, s.sy, s.placement)
            self.doc._set_geometry(s.layer, *after)
            self.doc.undo_stack.push(PlaceLayerCommand(self.doc, s.layer, s.before, after, "Transform"))
        self._changed()

    def cancel(self) -> None:
        s = self.session
        self.session = self.drag = None
        if s is not None:
            self.doc._set_geometry(s.layer, *s.before)
        self._changed()

    def leave(self) -> None:
        # Switching tools keeps the work, as in Krita; Esc is the way to throw it away.
        self.apply()

    def set_placement(self, placement: Placement) -> None:
        if self.session is not None:
            self.session.placement = placement
            self._show(smooth=True)

    def flip(self, horizontal: bool) -> None:
        if self.session is not None or self.begin():
            assert self.session is not None
            self.set_placement(self.session.placement.flipped(horizontal))

    def _forget(self) -> None:
        self.session = self.drag = None

    def _show(self, smooth: bool) -> None:
        s = self.session
        assert s is not None
        smooth = smooth or s.source.shape[0] * s.source.shape[1] * s.placement.sx**2 <= SMOOTH_PREVIEW_MAX
        try:
            pixels, x, y = transform_pixels(s.source, s.sx, s.sy, s.placement, smooth)
        except ValueError as e:
            self.notify(str(e))
            return
        self.doc._set_geometry(s.layer, pixels, x, y)
        self._changed()

    def _changed(self) -> None:
        if self.canvas is not None:
            self.canvas.update()
        self.on_change()

    # --- keys ---------------------------------------------------------------------------------

    def wants_key(self, key: int) -> bool:
        return self.session is not None and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)

    def key(self, key: int) -> bool:
        if self.wants_key(key):
            self.apply()
            return True
        return False

    # --- handles ------------------------------------------------------------------------------

    def outline(self) -> list[tuple[float, float]]:
        """The content's corners once placed, clockwise from the top left (document coordinates)."""
        s = self.session
        if s is None:
            return []
        h, w = s.source.shape[:2]
        x0, y0, x1, y1 = s.sx, s.sy, s.sx + w, s.sy + h
        return [s.placement.map(px, py) for px, py in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]

    def handles(self) -> list[tuple[str, tuple[float, float]]]:
        """(kind, document point): corners scale both axes, edge midpoints one."""
        c = self.outline()
        if not c:
            return []
        mids = [((c[i][0] + c[(i + 1) % 4][0]) / 2, (c[i][1] + c[(i + 1) % 4][1]) / 2) for i in range(4)]
        return [("scale", p) for p in c] + [
            ("scale-y", mids[0]),
            ("scale-x", mids[1]),
            ("scale-y", mids[2]),
            ("scale-x", mids[3]),
        ]

    def _hit(self, x: float, y: float) -> str:
        scale = self.canvas.scale if self.canvas is not None else 1.0
        reach = HANDLE_PX / scale
        for kind, (hx, hy) in self.handles():
            if math.hypot(x - hx, y - hy) <= reach:
                return kind
        return (
            "move"
            if QPolygonF([QPointF(*p) for p in self.outline()]).containsPoint(
                QPointF(x, y), Qt.FillRule.OddEvenFill
            )
            else "rotate"
        )

    def press(self, e: ToolEvent) -> None:
        if self.session is None and not self.begin():
            return
        assert self.session is not None
        self.drag = _Drag(self._hit(e.x, e.y), (e.x, e.y), self.session.placement)

    def move(self, e: ToolEvent) -> None:
        if self.session is None or self.drag is None:
            return
        shift = bool(e.modifiers & Qt.KeyboardModifier.ShiftModifier)
        placement = _dragged(self.drag, (e.x, e.y), shift)
        if placement != self.session.placement:
            self.session.placement = placement
            self._show(smooth=False)

    def release(self, e: ToolEvent) -> None:
        if self.drag is None:
            return
        self.move(e)
        self.drag = None
        if self.session is not None:
            self._show(smooth=True)

    def paint_overlay(self, p: QPainter, canvas: View) -> None:
        corners = self.outline()
        if not corners:
            return
        poly = QPolygonF([canvas.to_widget(QPointF(*c)) for c in corners])
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0), 1.0))
        p.drawPolygon(poly)
        p.setPen(QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine))
        p.drawPolygon(poly)
        p.setPen(QPen(QColor(20, 20, 20), 1.0))
        p.setBrush(QColor(255, 255, 255))
        for _, point in self.handles():
            w = canvas.to_widget(QPointF(*point))
            p.drawRect(QRectF(w.x() - 4, w.y() - 4, 8, 8))


def _dragged(drag: _Drag, to: tuple[float, float], shift: bool) -> Placement:
    """The placement once `drag` has reached document point `to`."""
    pl = drag.placement
    if drag.kind == "move":
        return replace(pl, tx=pl.tx + to[0] - drag.start[0], ty=pl.ty + to[1] - drag.start[1])
    cx, cy = pl.centre
    ax, ay = drag.start[0] - cx, drag.start[1] - cy
    bx, by = to[0] - cx, to[1] - cy
    if drag.kind == "rotate":
        turn = math.degrees(math.atan2(by, bx) - math.atan2(ay, ax))
        angle = pl.angle + turn
        if shift:
            angle = round(angle / ROTATE_SNAP) * ROTATE_SNAP
        return replace(pl, angle=angle)
    if drag.kind == "scale":
        before = math.hypot(ax, ay)
        factor = math.hypot(bx, by) / before if before > 1e-6 else 1.0
        return replace(pl, sx=pl.sx * factor, sy=pl.sy * factor)
    # One axis: measure along that axis of the (rotated) box.
    a = math.radians(pl.angle)
    ux, uy = (math.cos(a), math.sin(a)) if drag.kind == "scale-x" else (-math.sin(a), math.cos(a))
    before = ax * ux + ay * uy
    factor = (bx * ux + by * uy) / before if abs(before) > 1e-6 else 1.0
    if abs(factor) < 1e-3:
        return pl
    if drag.kind == "scale-x":
        return replace(pl, sx=pl.sx * factor)
    return replace(pl, sy=pl.sy * factor)
