"""The scroll area a run panel puts its options in, so a short dock shrinks the options, never the run
buttons below them (Generate stays visible at 1000x650)."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFrame, QScrollArea, QWidget


def options_scroll(options: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(options)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumHeight(60)
    return area
