"""The canvas: shows the document through cached tiles with zoom and pan, and hands pointer input
(with tablet pressure) to the current tool. It draws; the tools and the document decide."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import (
    QBrush,
    QColor,
    QHideEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QRegion,
    QResizeEvent,
    QShowEvent,
    QTabletEvent,
    QTransform,
    QWheelEvent,
)
from PyQt6.QtWidgets import QApplication, QWidget

from .ants import MarchingAnts
from .document import Document
from .model.pixels import Box, composite_premultiplied, intersect, to_rgba8_premultiplied
from .render import PATCH_MAX_AREA, TILE, TileCache
from .toolstate import ToolState

if TYPE_CHECKING:
    from .tools import Tool, ToolEvent

MIN_SCALE, MAX_SCALE = 1 / 32, 32.0


class Canvas(QWidget):
    view_changed = pyqtSignal()
    cursor_moved = pyqtSignal(float, float)  # document coordinates

    def __init__(self, doc: Document, tools: ToolState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.tools = tools
        self.tool: Tool | None = None
        self.scale = 1.0
        self.origin = QPointF(0, 0)  # widget position of document (0, 0)
        self._fitted = False
        self._view_is_fit = False
        self._pan_from: QPointF | None = None
        self._temp_pan = False
        self._mouse: QPointF | None = None
        self._tablet_down = False
        self.preview: tuple[QImage, int, int] | None = None
        # A result shown over the document that is not part of it (Live mode, the History panel); where the
        # painter painted since it was made, the paint shows through until a newer result replaces it.
        self.overlay: tuple[QImage, int, int] | None = None
        self.painted_over_overlay = QRegion()
        self.wheel_zooms = False  # True: the wheel zooms and Ctrl+wheel scrolls (the older habit)
        # Document area painted while a run is under way: shown over the run's preview, not under it.
        self.painted_during_run: QRegion | None = None
        self.composite_tiles = TileCache(self._build_composite)
        self.selection_tiles = TileCache(self._build_selection, max_tiles=256)
        self.ants = MarchingAnts(doc.selection, self)
        self.ants.moved.connect(self._ants_moved)
        self._checker = _checker_brush()
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 200)
        self.setCursor(Qt.CursorShape.CrossCursor)
        doc.pixels_changed.connect(self._on_pixels)
        doc.selection.changed.connect(self._on_selection)
        doc.reset.connect(self._on_reset)
        tools.changed.connect(self.update)

    # --- view ---------------------------------------------------------------------------------

    def view_transform(self) -> QTransform:
        """Document to widget coordinates."""
        return QTransform(self.scale, 0, 0, self.scale, self.origin.x(), self.origin.y())

    def to_doc(self, p: QPointF) -> QPointF:
        return (p - self.origin) / self.scale

    def to_widget(self, p: QPointF) -> QPointF:
        return p * self.scale + self.origin

    def doc_rect_to_widget(self, box: Box) -> QRectF:
        x, y, w, h = box
        return QRectF(
            self.origin.x() + x * self.scale, self.origin.y() + y * self.scale, w * self.scale, h * self.scale
        )

    def fit(self) -> None:
        margin = 24
        w, h = max(1, self.width() - 2 * margin), max(1, self.height() - 2 * margin)
        self.scale = max(MIN_SCALE, min(MAX_SCALE, min(w / self.doc.width, h / self.doc.height)))
        self.origin = QPointF(
            (self.width() - self.doc.width * self.scale) / 2,
            (self.height() - self.doc.height * self.scale) / 2,
        )
        self._fitted = True
        self._view_is_fit = True
        self.update()
        self.view_changed.emit()

    def zoom_at(self, factor: float, at: QPointF | None = None) -> None:
        at = at if at is not None else QPointF(self.width() / 2, self.height() / 2)
        anchor = self.to_doc(at)
        self.scale = max(MIN_SCALE, min(MAX_SCALE, self.scale * factor))
        self.origin = at - anchor * self.scale
        self._view_is_fit = False
        self.update()
        self.view_changed.emit()

    def set_scale(self, scale: float) -> None:
        self.zoom_at(scale / self.scale)

    def pan_by(self, dx: float, dy: float) -> None:
        self.origin += QPointF(dx, dy)
        self._view_is_fit = False
        self.update()
        self.view_changed.emit()

    def set_temp_pan(self, on: bool) -> None:
        """Space held: drag pans whatever the tool."""
        self._temp_pan = on
        self.setCursor(Qt.CursorShape.OpenHandCursor if on else Qt.CursorShape.CrossCursor)

    def level(self) -> int:
        """Level of detail: each level halves the sampling when zoomed out."""
        return max(0, min(8, int(math.floor(math.log2(1.0 / self.scale) + 1e-9)))) if self.scale < 1 else 0

    def visible_doc_box(self) -> Box | None:
        tl = self.to_doc(QPointF(0, 0))
        br = self.to_doc(QPointF(self.width(), self.height()))
        box = (
            int(math.floor(tl.x())),
            int(math.floor(tl.y())),
            int(math.ceil(br.x() - tl.x())) + 1,
            int(math.ceil(br.y() - tl.y())) + 1,
        )
        return intersect(box, self.doc.rect)

    def drop_point(self) -> tuple[float, float]:
        """Where something dropped in goes (document coordinates): the pointer when it is over the
        canvas, else the middle of the view."""
        at = self._mouse if self._mouse is not None else QPointF(self.width() / 2, self.height() / 2)
        d = self.to_doc(at)
        return (d.x(), d.y())

    def set_preview(self, image: QImage | None, x: int = 0, y: int = 0) -> None:
        old = self.preview
        self.preview = None if image is None else (image, x, y)
        for p in (old, self.preview):
            if p is not None:
                self.update(
                    self.doc_rect_to_widget((p[1], p[2], p[0].width(), p[0].height()))
                    .toAlignedRect()
                    .adjusted(-2, -2, 2, 2)
                )

    def set_overlay(self, image: QImage | None, x: int = 0, y: int = 0) -> None:
        """Show `image` at document (x, y) over the document, or nothing. A result that lands while the
        pointer is down keeps the stroke under way visible (the result was cut before it)."""
        old = self.overlay
        self.overlay = None if image is None else (image, x, y)
        if not (self._tablet_down or QApplication.mouseButtons() != Qt.MouseButton.NoButton):
            self.painted_over_overlay = QRegion()
        for o in (old, self.overlay):
            if o is not None:
                self.update(
                    self.doc_rect_to_widget((o[1], o[2], o[0].width(), o[0].height()))
                    .toAlignedRect()
                    .adjusted(-2, -2, 2, 2)
                )

    # --- document signals ---------------------------------------------------------------------

    def set_running(self, on: bool) -> None:
        """A generation started (collect where the painter paints) or ended."""
        self.painted_during_run = QRegion() if on else None

    def _on_pixels(self, box: Box | None) -> None:
        if self.painted_during_run is not None:
            self.painted_during_run += QRect(*box) if box is not None else QRect(*self.doc.rect)
        if self.overlay is not None:
            self.painted_over_overlay += QRect(*box) if box is not None else QRect(*self.doc.rect)
        if box is not None and box[2] * box[3] <= PATCH_MAX_AREA:
            self.composite_tiles.patch(box, self.level())
        else:
            self.composite_tiles.invalidate(box)
        if box is None:
            self.update()
        else:
            self.update(self.doc_rect_to_widget(box).toAlignedRect().adjusted(-2, -2, 2, 2))

    def _on_selection(self, box: Box | None) -> None:
        self.selection_tiles.invalidate(box)
        self.update()

    def _ants_moved(self) -> None:
        visible = self.visible_doc_box()
        if visible is not None:
            self.update(self.ants.region(self.view_transform(), visible))

    def _on_reset(self) -> None:
        self.composite_tiles.invalidate()
        self.selection_tiles.invalidate()
        self.preview = None
        self.overlay = None
        if self.isVisible():
            self.fit()
        else:
            self._fitted = False

    # --- tile builders ------------------------------------------------------------------------

    def _build_composite(self, box: Box, step: int) -> np.ndarray | None:
        inner = intersect(box, self.doc.rect)
        if inner is None:
            return None
        return to_rgba8_premultiplied(composite_premultiplied(self.doc.layers, inner, step))

    def _build_selection(self, box: Box, step: int) -> np.ndarray | None:
        """Dim what is outside the selection (its outline is the marching ants' job)."""
        sel = self.doc.selection
        inner = intersect(box, self.doc.rect)
        if inner is None or sel.is_empty:
            return None
        x, y, w, h = inner
        m = sel.mask[y : y + h : step, x : x + w : step]
        out = np.zeros(m.shape + (4,), np.uint8)
        dim = ((255 - m.astype(np.uint16)) * 90 // 255).astype(np.uint8)  # premultiplied dark blue tint
        out[..., 0] = dim // 6
        out[..., 1] = dim // 5
        out[..., 2] = dim // 3
        out[..., 3] = dim
        return out

    # --- painting -----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802
        if not self._fitted and self.width() > 0:
            self.fit()
        p = QPainter(self)
        try:
            self._paint(p, event.rect() if event is not None else self.rect())
        finally:
            p.end()

    def _paint(self, p: QPainter, dirty: QRect) -> None:
        p.fillRect(self.rect(), QColor(58, 58, 62))
        doc_area = self.doc_rect_to_widget(self.doc.rect)
        p.save()
        p.setBrushOrigin(doc_area.topLeft())
        p.fillRect(doc_area, self._checker)
        p.restore()
        visible = self.visible_doc_box()
        if visible is not None:
            tl, br = self.to_doc(QPointF(dirty.topLeft())), self.to_doc(QPointF(dirty.bottomRight()))
            need = (int(tl.x()) - 1, int(tl.y()) - 1, int(br.x() - tl.x()) + 3, int(br.y() - tl.y()) + 3)
            visible = intersect(visible, need)
        if visible is not None:
            smooth = self.scale < 1.0
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            self._draw_tiles(p, self.composite_tiles, visible)
            if self.overlay is not None:
                img, ox, oy = self.overlay
                p.save()
                if not self.painted_over_overlay.isEmpty():
                    painted = self.view_transform().map(self.painted_over_overlay)
                    p.setClipRegion(QRegion(self.rect()).subtracted(painted))
                p.drawImage(self.doc_rect_to_widget((ox, oy, img.width(), img.height())), img)
                p.restore()
            if self.preview is not None:
                img, px, py = self.preview
                p.save()
                if self.painted_during_run is not None and not self.painted_during_run.isEmpty():
                    painted = self.view_transform().map(self.painted_during_run)
                    p.setClipRegion(QRegion(self.rect()).subtracted(painted))
                p.drawImage(self.doc_rect_to_widget((px, py, img.width(), img.height())), img)
                p.restore()
            if not self.doc.selection.is_empty:
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
                self._draw_tiles(p, self.selection_tiles, visible)
                self.ants.paint(p, self.view_transform(), visible)
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(doc_area.adjusted(-1, -1, 0, 0))
        if self.tool is not None:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            self.tool.paint_overlay(p, self)
        if (
            self._mouse is not None
            and self.tools.tool in ("brush", "eraser", "maskbrush")
            and not self._temp_pan
        ):
            r = max(1.0, self.tools.size * self.scale / 2)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(0, 0, 0, 160), 1.5))
            p.drawEllipse(self._mouse, r, r)
            p.setPen(QPen(QColor(255, 255, 255, 200), 0.8))
            p.drawEllipse(self._mouse, r, r)

    def _draw_tiles(self, p: QPainter, cache: TileCache, visible: Box) -> None:
        level = self.level()
        span = TILE << level
        step = 1 << level
        x, y, w, h = visible
        for ty in range(y // span, (y + h - 1) // span + 1):
            for tx in range(x // span, (x + w - 1) // span + 1):
                img = cache.get(level, tx, ty)
                if img is None:
                    continue
                p.drawImage(
                    self._snapped((tx * span, ty * span, img.width() * step, img.height() * step)), img
                )

    def _snapped(self, box: Box) -> QRect:
        """`box` on screen with its edges rounded to whole pixels. Neighbouring tiles round their shared
        edge the same way, so they meet exactly: no pixel is half-covered by both (a faint line where
        the checkerboard shows through) and none is left out."""
        x, y, w, h = box
        ox, oy, s = self.origin.x(), self.origin.y(), self.scale
        x0, y0 = round(ox + x * s), round(oy + y * s)
        x1, y1 = round(ox + (x + w) * s), round(oy + (y + h) * s)
        return QRect(x0, y0, max(1, x1 - x0), max(1, y1 - y0))

    # --- input --------------------------------------------------------------------------------

    def _event(
        self, pos: QPointF, pressure: float, buttons: Qt.MouseButton, mods: Qt.KeyboardModifier
    ) -> ToolEvent:
        from .tools import ToolEvent

        d = self.to_doc(pos)
        return ToolEvent(d.x(), d.y(), pressure, buttons, mods)

    def _panning(self) -> bool:
        return self._temp_pan or self.tools.tool == "pan"

    def mousePressEvent(self, e: QMouseEvent | None) -> None:  # noqa: N802
        assert e is not None
        self.setFocus()
        if e.button() == Qt.MouseButton.MiddleButton or (
            e.button() == Qt.MouseButton.LeftButton and self._panning()
        ):
            self._pan_from = e.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if e.button() == Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.press(self._event(e.position(), 1.0, e.buttons(), e.modifiers()))

    def mouseMoveEvent(self, e: QMouseEvent | None) -> None:  # noqa: N802
        assert e is not None
        old = self._mouse
        self._mouse = e.position()
        d = self.to_doc(e.position())
        self.cursor_moved.emit(d.x(), d.y())
        if self._pan_from is not None:
            delta = e.position() - self._pan_from
            self._pan_from = e.position()
            self.pan_by(delta.x(), delta.y())
            return
        if e.buttons() & Qt.MouseButton.LeftButton and self.tool is not None and not self._tablet_down:
            self.tool.move(self._event(e.position(), 1.0, e.buttons(), e.modifiers()))
        self._update_cursor_ring(old)

    def mouseReleaseEvent(self, e: QMouseEvent | None) -> None:  # noqa: N802
        assert e is not None
        if self._pan_from is not None and e.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.set_temp_pan(self._temp_pan)
            return
        if e.button() == Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.release(self._event(e.position(), 1.0, e.buttons(), e.modifiers()))

    def tabletEvent(self, e: QTabletEvent | None) -> None:  # noqa: N802
        assert e is not None
        if self.tool is None or self._panning():
            e.ignore()
            return
        pressure = float(e.pressure()) if self.tools.pressure else 1.0
        ev = self._event(e.position(), pressure, e.buttons(), e.modifiers())
        t = e.type()
        if t == QTabletEvent.Type.TabletPress:
            self._tablet_down = True
            self.tool.press(ev)
        elif t == QTabletEvent.Type.TabletMove and self._tablet_down:
            self.tool.move(ev)
        elif t == QTabletEvent.Type.TabletRelease and self._tablet_down:
            self._tablet_down = False
            self.tool.release(ev)
        e.accept()

    def wheelEvent(self, e: QWheelEvent | None) -> None:  # noqa: N802
        """The wheel scrolls (Shift: sideways) and Ctrl+wheel zooms, as in Krita and GIMP; with
        `wheel_zooms` set the two swap, for those used to the other habit."""
        assert e is not None
        mods = e.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        dx, dy = e.angleDelta().x(), e.angleDelta().y()
        if ctrl != self.wheel_zooms:
            if dy:
                self.zoom_at(1.25 ** (dy / 120), e.position())
            return
        pixels = e.pixelDelta()
        if not pixels.isNull():  # a touchpad says how far, in pixels
            dx, dy = pixels.x(), pixels.y()
        if mods & Qt.KeyboardModifier.ShiftModifier and not dx:
            dx, dy = dy, 0
        self.pan_by(dx / 2, dy / 2)

    def event(self, e: QEvent | None) -> bool:
        # A tool in the middle of its work (Enter applies a transform) takes keys before shortcuts do.
        if (
            e is not None
            and e.type() == QEvent.Type.ShortcutOverride
            and isinstance(e, QKeyEvent)
            and self.tool is not None
            and self.tool.wants_key(e.key())
        ):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent | None) -> None:  # noqa: N802
        assert e is not None
        if self.tool is not None and self.tool.key(e.key()):
            e.accept()
            return
        super().keyPressEvent(e)

    def leaveEvent(self, e: object) -> None:  # noqa: N802
        old, self._mouse = self._mouse, None
        self._update_cursor_ring(old)

    def showEvent(self, e: QShowEvent | None) -> None:  # noqa: N802
        self.ants.set_shown(True)
        super().showEvent(e)

    def hideEvent(self, e: QHideEvent | None) -> None:  # noqa: N802
        self.ants.set_shown(False)
        super().hideEvent(e)

    def resizeEvent(self, e: QResizeEvent | None) -> None:  # noqa: N802
        # A view the painter has not moved since it was fitted stays fitted as the window resizes.
        if not self._fitted or self._view_is_fit:
            self.fit()
        super().resizeEvent(e)

    def _update_cursor_ring(self, old: QPointF | None) -> None:
        r = int(self.tools.size * self.scale / 2) + 4
        for p in (old, self._mouse):
            if p is not None:
                self.update(QRect(int(p.x()) - r, int(p.y()) - r, 2 * r + 1, 2 * r + 1))


def _checker_brush() -> QBrush:
    pm = QPixmap(16, 16)
    pm.fill(QColor(200, 200, 200))
    p = QPainter(pm)
    p.fillRect(0, 0, 8, 8, QColor(240, 240, 240))
    p.fillRect(8, 8, 8, 8, QColor(240, 240, 240))
    p.end()
    return QBrush(pm)
