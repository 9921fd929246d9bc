"""The colour dock: foreground and background swatches (X swaps, D resets to black on white), an HSV
square with a hue slider, and a hex entry. It edits the ToolState's colours and follows them, so the
eyedropper and the recent colours show here at once."""

from __future__ import annotations

import qtawesome as qta
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QLinearGradient, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.toolstate import ToolState


class SaturationValueSquare(QWidget):
    """Saturation left to right, value bottom to top, for one hue; click or drag to pick."""

    picked = pyqtSignal(float, float)  # saturation, value in [0, 1]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hue = 0.0
        self.saturation = 0.0
        self.value = 0.0
        self._image: QImage | None = None
        self.setMinimumSize(120, 100)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(180, 140)

    def set_hsv(self, hue: float, saturation: float, value: float) -> None:
        if hue != self.hue:
            self._image = None
        self.hue, self.saturation, self.value = hue, saturation, value
        self.update()

    def _field(self) -> QImage:
        if self._image is None or self._image.size() != self.size():
            w, h = max(1, self.width()), max(1, self.height())
            img = QImage(w, h, QImage.Format.Format_RGB32)
            p = QPainter(img)
            # Across: white to the pure hue; then down: a transparent to black overlay.
            across = QLinearGradient(0, 0, w, 0)
            across.setColorAt(0, QColor(255, 255, 255))
            across.setColorAt(1, QColor.fromHsvF(self.hue, 1.0, 1.0))
            p.fillRect(0, 0, w, h, across)
            down = QLinearGradient(0, 0, 0, h)
            down.setColorAt(0, QColor(0, 0, 0, 0))
            down.setColorAt(1, QColor(0, 0, 0, 255))
            p.fillRect(0, 0, w, h, down)
            p.end()
            self._image = img
        return self._image

    def paintEvent(self, e: QPaintEvent | None) -> None:  # noqa: N802
        p = QPainter(self)
        p.drawImage(0, 0, self._field())
        at = self.point_of(self.saturation, self.value)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(0, 0, 0), 2))
        p.drawEllipse(at, 5, 5)
        p.setPen(QPen(QColor(255, 255, 255), 1))
        p.drawEllipse(at, 5, 5)
        p.end()

    def point_of(self, saturation: float, value: float) -> QPointF:
        return QPointF(saturation * (self.width() - 1), (1.0 - value) * (self.height() - 1))

    def _pick(self, pos: QPointF) -> None:
        s = min(1.0, max(0.0, pos.x() / max(1, self.width() - 1)))
        v = min(1.0, max(0.0, 1.0 - pos.y() / max(1, self.height() - 1)))
        self.saturation, self.value = s, v
        self.update()
        self.picked.emit(s, v)

    def mousePressEvent(self, e: QMouseEvent | None) -> None:  # noqa: N802
        if e is not None and e.button() == Qt.MouseButton.LeftButton:
            self._pick(e.position())

    def mouseMoveEvent(self, e: QMouseEvent | None) -> None:  # noqa: N802
        if e is not None and e.buttons() & Qt.MouseButton.LeftButton:
            self._pick(e.position())


class ColourSwatches(QWidget):
    """Foreground square over the background one, as in Krita and GIMP."""

    def __init__(self, state: ToolState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setFixedSize(46, 46)
        self.setToolTip("Foreground over background colour (X swaps, D resets)")
        state.changed.connect(self.update)

    def paintEvent(self, e: QPaintEvent | None) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(self.state.background)
        p.drawRect(QRectF(16, 16, 28, 28))
        p.setBrush(self.state.color)
        p.drawRect(QRectF(1, 1, 28, 28))
        p.end()


class ColourPanel(QWidget):
    def __init__(self, state: ToolState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.square = SaturationValueSquare()
        self.square.picked.connect(self._picked_sv)
        self.hue = QSlider(Qt.Orientation.Horizontal)
        self.hue.setRange(0, 359)
        self.hue.setToolTip("Hue")
        self.hue.valueChanged.connect(self._picked_hue)
        self.hex = QLineEdit()
        self.hex.setPlaceholderText("#rrggbb")
        self.hex.setMaxLength(7)
        self.hex.setToolTip("Foreground colour as hex (#rrggbb); Enter sets it")
        self.hex.editingFinished.connect(self._hex_entered)
        self.swatches = ColourSwatches(state)
        self.swap = QToolButton()
        self.swap.setIcon(qta.icon("mdi6.swap-horizontal"))
        self.swap.setToolTip("Swap foreground and background (X)")
        self.swap.clicked.connect(state.swap_colors)
        self.reset = QToolButton()
        self.reset.setIcon(qta.icon("mdi6.invert-colors"))
        self.reset.setToolTip("Black on white (D)")
        self.reset.clicked.connect(state.default_colors)

        row = QHBoxLayout()
        row.addWidget(self.swatches)
        buttons = QVBoxLayout()
        buttons.addWidget(self.swap)
        buttons.addWidget(self.reset)
        row.addLayout(buttons)
        hex_box = QVBoxLayout()
        hex_box.addWidget(QLabel("Hex"))
        hex_box.addWidget(self.hex)
        row.addLayout(hex_box, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.square, 1)
        lay.addWidget(self.hue)
        lay.addLayout(row)
        self._hue = 0.0  # kept apart from the colour: a grey has no hue, but the slider keeps its place
        state.changed.connect(self._sync)
        self._sync()

    def _set(self, color: QColor) -> None:
        if color.name() != self.state.color.name():
            self.state.set_color(color)

    def _picked_sv(self, s: float, v: float) -> None:
        self._set(QColor.fromHsvF(self._hue, s, v))

    def _picked_hue(self, degrees: int) -> None:
        self._hue = degrees / 360.0
        self._set(QColor.fromHsvF(self._hue, self.square.saturation, self.square.value))
        self.square.set_hsv(self._hue, self.square.saturation, self.square.value)

    def _hex_entered(self) -> None:
        color = QColor(self.hex.text().strip())
        if not color.isValid() or not self.hex.text().strip().startswith("#"):
            self.hex.setToolTip(f"{self.hex.text()!r} is not a colour: write #rrggbb, e.g. #3a7bd5")
            self.hex.setText(self.state.color.name())
            return
        self._set(color)

    def _sync(self) -> None:
        c = self.state.color
        h, s, v, _ = c.getHsvF()
        if h is not None and h >= 0 and s:
            self._hue = h
        self.square.set_hsv(self._hue, s or 0.0, v or 0.0)
        self.hue.blockSignals(True)
        self.hue.setValue(round(self._hue * 360) % 360)
        self.hue.blockSignals(False)
        if not self.hex.hasFocus():
            self.hex.setText(c.name())
