"""The Results panel: the history of results as thumbnails, newest first. Hovering one shows it over the
canvas, a click keeps it on show, Apply adds it as a new layer, Re-run makes it again with a new seed."""

from __future__ import annotations

from collections.abc import Callable

import qtawesome as qta
from PyQt6.QtCore import QEvent, QObject, QSize, Qt
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.history import THUMBNAIL_PX, HistoryEntry, ResultHistory

ENTRY_ROLE = Qt.ItemDataRole.UserRole


class HistoryPanel(QWidget):
    def __init__(
        self,
        history: ResultHistory,
        apply: Callable[[HistoryEntry | None], object],
        rerun: Callable[[HistoryEntry], object],
        set_limit: Callable[[int], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setMouseTracking(True)
        self.list.itemEntered.connect(lambda item: history.peek(self._entry(item)))
        viewport = self.list.viewport()
        if viewport is not None:  # leaving the thumbnails goes back to the picked result
            viewport.installEventFilter(self)
        self.list.itemClicked.connect(lambda item: history.show(self._entry(item)))
        self.list.itemDoubleClicked.connect(lambda item: apply(self._entry(item)))
        self.apply = QPushButton(qta.icon("mdi6.check-bold"), " Apply")
        self.apply.setToolTip("Add the result on show as a new layer (Enter)")
        self.apply.clicked.connect(lambda: apply(None))
        self.rerun = QPushButton(qta.icon("mdi6.dice-multiple-outline"), " Re-run")
        self.rerun.setToolTip("Run the picked result's settings again with a new seed")
        self.rerun.clicked.connect(lambda: self._rerun(rerun))
        self.limit = QSpinBox()
        self.limit.setRange(1, 500)
        self.limit.setValue(history.limit)
        self.limit.setToolTip("How many results the history keeps (pixels and a thumbnail each)")
        self.limit.valueChanged.connect(set_limit)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid); font-size: 10px;")
        row = QHBoxLayout()
        row.addWidget(self.apply)
        row.addWidget(self.rerun)
        row.addStretch(1)
        row.addWidget(QLabel("Keep"))
        row.addWidget(self.limit)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.summary)
        lay.addLayout(row)
        history.changed.connect(self._rebuild)
        history.overlay_changed.connect(self._on_overlay)
        self._rebuild()
        self._on_overlay(history.overlay)

    @staticmethod
    def _entry(item: QListWidgetItem | None) -> HistoryEntry | None:
        return None if item is None else item.data(ENTRY_ROLE)

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        if event is not None and event.type() == QEvent.Type.Leave:
            self.history.peek(None)
        return False

    def _rerun(self, rerun: Callable[[HistoryEntry], object]) -> None:
        entry = self.history.shown or (self.history.entries[-1] if self.history.entries else None)
        if entry is not None:
            rerun(entry)

    def _rebuild(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for entry in reversed(self.history.entries):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(entry.thumbnail)), f"seed {entry.seed}")
            item.setData(ENTRY_ROLE, entry)
            item.setToolTip(entry.summary)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._on_overlay(self.history.overlay)

    def _on_overlay(self, entry: object) -> None:
        has = isinstance(entry, HistoryEntry)
        self.apply.setEnabled(has)
        self.rerun.setEnabled(bool(self.history.entries))
        self.summary.setText(entry.summary if isinstance(entry, HistoryEntry) else "")
        if isinstance(entry, HistoryEntry) and entry is self.history.shown:
            for i in range(self.list.count()):
                item = self.list.item(i)
                if item is not None and item.data(ENTRY_ROLE) is entry:
                    self.list.blockSignals(True)
                    self.list.setCurrentItem(item)
                    self.list.blockSignals(False)
