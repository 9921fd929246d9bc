"""PyQt5 (Krita 5) or PyQt6 (Krita 6): whichever the host already loaded."""

from __future__ import annotations

import sys

if "PyQt6" in sys.modules:
    QT6 = True
elif "PyQt5" in sys.modules:
    QT6 = False
else:
    try:
        import PyQt5  # noqa: F401

        QT6 = False
    except ImportError:
        QT6 = True

if QT6:
    from PyQt6.QtCore import QByteArray, QCoreApplication, QObject, Qt, QThread, QTimer, pyqtSignal
    from PyQt6.QtGui import QIcon, QImage, QPixmap
    from PyQt6.QtWidgets import (
        QCheckBox,
        QComboBox,
        QDoubleSpinBox,
        QFormLayout,
        QGroupBox,
        QHBoxLayout,
        QLabel,
        QListWidget,
        QListWidgetItem,
        QLineEdit,
        QPlainTextEdit,
        QProgressBar,
        QPushButton,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )
else:
    from PyQt5.QtCore import QByteArray, QCoreApplication, QObject, Qt, QThread, QTimer, pyqtSignal
    from PyQt5.QtGui import QIcon, QImage, QPixmap
    from PyQt5.QtWidgets import (
        QCheckBox,
        QComboBox,
        QDoubleSpinBox,
        QFormLayout,
        QGroupBox,
        QHBoxLayout,
        QLabel,
        QListWidget,
        QListWidgetItem,
        QLineEdit,
        QPlainTextEdit,
        QProgressBar,
        QPushButton,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )

__all__ = [
    "QT6",
    "QByteArray",
    "QCoreApplication",
    "QObject",
    "Qt",
    "QThread",
    "QTimer",
    "pyqtSignal",
    "QCheckBox",
    "QComboBox",
    "QDoubleSpinBox",
    "QFormLayout",
    "QGroupBox",
    "QHBoxLayout",
    "QIcon",
    "QImage",
    "QLabel",
    "QListWidget",
    "QListWidgetItem",
    "QPixmap",
    "QLineEdit",
    "QPlainTextEdit",
    "QProgressBar",
    "QPushButton",
    "QSpinBox",
    "QVBoxLayout",
    "QWidget",
]
