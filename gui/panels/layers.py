"""The layers panel: a list bound to the document (top layer first) with drag to reorder, rename in
place, visibility check boxes, thumbnails, and buttons for the layer verbs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import qtawesome as qta
from PyQt6.QtCore import QAbstractListModel, QByteArray, QMimeData, QModelIndex, QSize, Qt, QTimer
from PyQt6.QtGui import QFont, QIcon, QImage, QPixmap
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.document import Document
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import BLEND_MODES, NORMAL, blend_label
from noisebrush.gui.render import array_image

MIME = "application/x-noisebrush-layer"
THUMB = 40


def thumbnail(layer: Layer, size: int = THUMB) -> QPixmap:
    """A small picture of the layer's own pixels on a checkerboard."""
    h, w = layer.pixels.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / size)))
    small = np.ascontiguousarray(layer.pixels[::step, ::step])
    sh, sw = small.shape[:2]
    yy, xx = np.mgrid[0:sh, 0:sw]
    check = np.where(((yy // 4 + xx // 4) % 2)[..., None] == 0, 235, 200).astype(np.float32)
    a = small[..., 3:4].astype(np.float32) / 255.0
    rgb = (small[..., :3] * a + check * (1 - a)).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
    img = array_image(rgb, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img)


class LayerListModel(QAbstractListModel):
    """Rows are layers from the top down; edits become undoable document verbs."""

    def __init__(self, doc: Document) -> None:
        super().__init__()
        self.doc = doc
        self._thumbs: dict[int, QPixmap] = {}
        self._stale: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)  # thumbnails follow paint at most four times a second
        self._timer.timeout.connect(self._refresh_thumbs)
        doc.layers_changed.connect(self._reset)
        doc.layer_pixels_changed.connect(self._pixels)
        doc.reset.connect(self._clear)

    def layer_at(self, row: int) -> Layer:
        return self.doc.layers[len(self.doc.layers) - 1 - row]

    def row_of(self, layer: Layer) -> int:
        return len(self.doc.layers) - 1 - self.doc.index_of(layer)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.doc.layers)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.doc.layers):
            return None
        layer = self.layer_at(index.row())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if role == Qt.ItemDataRole.DisplayRole:
                extra = [] if layer.opacity >= 1 else [f"{round(layer.opacity * 100)}%"]
                if layer.blend != NORMAL:
                    extra.append(blend_label(layer.blend))
                if layer.locked:
                    extra.append("locked")
                if layer.alpha_locked:
                    extra.append("alpha locked")
                return layer.name + (f"  \u00b7 {', '.join(extra)}" if extra else "")
            return layer.name
        if role == Qt.ItemDataRole.CheckStateRole:
            return Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole:
            if layer.uid not in self._thumbs:
                self._thumbs[layer.uid] = thumbnail(layer)
            return QIcon(self._thumbs[layer.uid])
        if role == Qt.ItemDataRole.FontRole and layer.locked:
            f = QFont()
            f.setItalic(True)
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{layer.name}\n{layer.width}\u00d7{layer.height} at ({layer.x}, {layer.y})"
        return None

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid():
            return False
        layer = self.layer_at(index.row())
        if role == Qt.ItemDataRole.EditRole and str(value).strip():
            self.doc.set_layer_property(layer, "name", str(value).strip())
            return True
        if role == Qt.ItemDataRole.CheckStateRole:
            self.doc.set_layer_property(layer, "visible", Qt.CheckState(value) == Qt.CheckState.Checked)
            return True
        return False

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsDropEnabled
        if not index.isValid():
            return base
        return (
            base
            | Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsEditable
            | Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsDragEnabled
        )

    def supportedDropActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [MIME]

    def mimeData(self, indexes: Iterable[QModelIndex]) -> QMimeData:  # noqa: N802
        data = QMimeData()
        first = next(iter(indexes), None)
        if first is not None:
            data.setData(MIME, QByteArray(str(self.layer_at(first.row()).uid).encode()))
        return data

    def dropMimeData(  # noqa: N802
        self, data: QMimeData | None, action: Qt.DropAction, row: int, column: int, parent: QModelIndex
    ) -> bool:
        if data is None or not data.hasFormat(MIME):
            return False
        uid = int(bytes(data.data(MIME).data()).decode())
        layer = next((la for la in self.doc.layers if la.uid == uid), None)
        if layer is None:
            return False
        if row < 0:
            row = parent.row() if parent.isValid() else len(self.doc.layers)
        self.move_to_row(layer, row)
        return False  # the document did the move; the view must not remove the source row

    def move_to_row(self, layer: Layer, row: int) -> None:
        """Drop `layer` before list row `row` (rows count from the top)."""
        n = len(self.doc.layers)
        current = self.row_of(layer)
        if row > current:
            row -= 1
        self.doc.move_layer(layer, n - 1 - max(0, min(row, n - 1)))

    def _reset(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def _clear(self) -> None:
        self._thumbs.clear()
        self._reset()

    def _pixels(self, layer: Layer) -> None:
        self._stale.add(layer.uid)
        if not self._timer.isActive():
            self._timer.start()

    def _refresh_thumbs(self) -> None:
        for uid in self._stale:
            self._thumbs.pop(uid, None)
        self._stale.clear()
        if self.doc.layers:
            self.dataChanged.emit(
                self.index(0), self.index(len(self.doc.layers) - 1), [Qt.ItemDataRole.DecorationRole]
            )


class LayersPanel(QWidget):
    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.model = LayerListModel(doc)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.view.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.view.setDragEnabled(True)
        self.view.setAcceptDrops(True)
        self.view.setDropIndicatorShown(True)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.view.setSpacing(1)
        sel = self.view.selectionModel()
        assert sel is not None
        sel.selectionChanged.connect(self._picked)

        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity_label = QLabel("100%")
        self.opacity_label.setMinimumWidth(36)
        self.opacity.valueChanged.connect(self._opacity)
        top = QHBoxLayout()
        top.addWidget(QLabel("Opacity"))
        top.addWidget(self.opacity, 1)
        top.addWidget(self.opacity_label)

        self.blend = QComboBox()
        self.blend.setToolTip("Blend mode: how this layer mixes with what is below (saved in .ora)")
        for op, (label, _) in BLEND_MODES.items():
            self.blend.addItem(label, op)
        self.blend.activated.connect(self._blend)
        blend_row = QHBoxLayout()
        blend_row.addWidget(QLabel("Blend"))
        blend_row.addWidget(self.blend, 1)

        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        row.setSpacing(2)
        for key, icon, tip, slot in (
            ("new", "mdi6.plus-box-outline", "New layer (Ctrl+Shift+N)", lambda: doc.add_layer()),
            ("duplicate", "mdi6.content-duplicate", "Duplicate layer", self._duplicate),
            ("up", "mdi6.arrow-up", "Move layer up", lambda: self._shift(1)),
            ("down", "mdi6.arrow-down", "Move layer down", lambda: self._shift(-1)),
            ("merge", "mdi6.layers-triple-outline", "Merge down", self._merge),
            ("lock", "mdi6.lock-outline", "Lock layer (no painting)", self._lock),
            (
                "alpha",
                "mdi6.checkerboard",
                "Lock alpha: painting keeps the layer's transparency",
                self._alpha_lock,
            ),
            ("delete", "mdi6.delete-outline", "Delete layer", self._delete),
        ):
            b = QToolButton()
            b.setIcon(qta.icon(icon))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            if key in ("lock", "alpha"):
                b.setCheckable(True)
            row.addWidget(b)
            self.buttons[key] = b
        row.addStretch(1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addLayout(blend_row)
        lay.addWidget(self.view, 1)
        lay.addLayout(row)
        doc.active_changed.connect(self._sync)
        doc.layers_changed.connect(self._sync)
        self._sync()

    def _picked(self) -> None:
        if self._syncing:
            return
        rows = sorted({i.row() for i in self.view.selectedIndexes()})
        if not rows:
            return
        current = self.view.currentIndex()
        layers = [self.model.layer_at(r) for r in rows if r < len(self.doc.layers)]
        active = (
            self.model.layer_at(current.row()) if current.isValid() and current.row() in rows else layers[0]
        )
        self.doc.set_active(active, {la.uid for la in layers})

    _syncing = False

    def _sync(self) -> None:
        self._syncing = True
        try:
            doc, sel = self.doc, self.view.selectionModel()
            assert sel is not None
            sel.clearSelection()
            for la in doc.layers:
                if la.uid in doc.selected or la is doc.active:
                    idx = self.model.index(self.model.row_of(la))
                    sel.select(idx, sel.SelectionFlag.Select)
            if doc.active is not None and doc.active in doc.layers:
                self.view.setCurrentIndex(self.model.index(self.model.row_of(doc.active)))
                sel.select(self.model.index(self.model.row_of(doc.active)), sel.SelectionFlag.Select)
                self.opacity.blockSignals(True)
                self.opacity.setValue(round(doc.active.opacity * 100))
                self.opacity.blockSignals(False)
                self.opacity_label.setText(f"{round(doc.active.opacity * 100)}%")
                self.buttons["lock"].setChecked(doc.active.locked)
                self.buttons["alpha"].setChecked(doc.active.alpha_locked)
                self._show_blend(doc.active.blend)
                self.buttons["lock"].setIcon(
                    qta.icon("mdi6.lock" if doc.active.locked else "mdi6.lock-open-variant-outline")
                )
            self.buttons["delete"].setEnabled(len(doc.layers) > 1)
            why_not = (
                doc.why_not_merge_down(doc.active)
                if doc.active is not None and doc.active in doc.layers
                else "No layer is active"
            )
            self.buttons["merge"].setEnabled(why_not is None)
            self.buttons["merge"].setToolTip(why_not or "Merge down")
        finally:
            self._syncing = False

    def _opacity(self, value: int) -> None:
        if self.doc.active is not None:
            self.opacity_label.setText(f"{value}%")
            self.doc.set_layer_property(self.doc.active, "opacity", value / 100)

    def _show_blend(self, op: str) -> None:
        i = self.blend.findData(op)
        if i < 0:  # a mode from another program that we keep but do not draw
            self.blend.addItem(blend_label(op), op)
            i = self.blend.count() - 1
        self.blend.setCurrentIndex(i)

    def _blend(self, index: int) -> None:
        if self.doc.active is not None:
            self.doc.set_layer_property(self.doc.active, "blend", str(self.blend.itemData(index)))

    def _alpha_lock(self) -> None:
        if self.doc.active is not None:
            self.doc.set_layer_property(self.doc.active, "alpha_locked", not self.doc.active.alpha_locked)

    def _duplicate(self) -> None:
        if self.doc.active is not None:
            self.doc.duplicate_layer(self.doc.active)

    def _delete(self) -> None:
        if self.doc.active is not None:
            self.doc.delete_layer(self.doc.active)

    def _merge(self) -> None:
        if self.doc.active is not None:
            self.doc.merge_down(self.doc.active)

    def _lock(self) -> None:
        if self.doc.active is not None:
            self.doc.set_layer_property(self.doc.active, "locked", not self.doc.active.locked)

    def _shift(self, delta: int) -> None:
        if self.doc.active is not None:
            self.doc.move_layer(self.doc.active, self.doc.index_of(self.doc.active) + delta)
