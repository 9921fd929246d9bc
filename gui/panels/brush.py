"""Tool options: brush size, hardness, opacity, pressure, colour with recent colours, selection mode."""

from __future__ import annotations

import qtawesome as qta
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.model.brushes import PRESETS
from noisebrush.gui.placing import TransformTool
from noisebrush.gui.toolstate import MAX_RECENT, ToolState


def _swatch_style(color: QColor) -> str:
    return f"background:{color.name()}; border:1px solid #222; border-radius:3px;"


class BrushPanel(QWidget):
    def __init__(self, state: ToolState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)

        self.preset = QComboBox()
        for p in PRESETS:
            self.preset.addItem(p.name, p.name)
        self.preset.setToolTip("Brush preset: sets size, hardness, opacity, pressure and smoothing")
        self.preset.activated.connect(lambda i: state.use_preset(str(self.preset.itemData(i))))
        form.addRow("Preset", self.preset)

        # not `self.size`: that would hide QWidget.size()
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 500)
        self.size_label = QLabel()
        self.size_label.setMinimumWidth(40)
        self.size_slider.valueChanged.connect(lambda v: state.set_size(v))
        form.addRow("Size", _row(self.size_slider, self.size_label))

        self.hardness = QSlider(Qt.Orientation.Horizontal)
        self.hardness.setRange(0, 100)
        self.hardness.valueChanged.connect(lambda v: state.set(hardness=v / 100))
        form.addRow("Hardness", self.hardness)

        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(1, 100)
        self.opacity.valueChanged.connect(lambda v: state.set(opacity=v / 100))
        form.addRow("Opacity", self.opacity)

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 100)
        self.smoothing.setToolTip("Stroke smoothing: the brush trails the pointer to steady a shaky line")
        self.smoothing.valueChanged.connect(lambda v: state.set(smoothing=v / 100))
        form.addRow("Smoothing", self.smoothing)

        self.pressure = QCheckBox("Tablet pressure")
        self.pressure.setToolTip("Tablet pressure sets the size and opacity of each dab")
        self.pressure.toggled.connect(lambda on: state.set(pressure=on))
        form.addRow("", self.pressure)

        self.color = QPushButton()
        self.color.setFixedSize(44, 28)
        self.color.setToolTip("Brush colour (click to choose)")
        self.color.clicked.connect(self._choose)
        self.recent = QGridLayout()
        self.recent.setSpacing(3)
        self._recent_buttons: list[QToolButton] = []
        for i in range(MAX_RECENT):
            b = QToolButton()
            b.setFixedSize(18, 18)
            b.clicked.connect(lambda _=False, i=i: self._use_recent(i))
            self.recent.addWidget(b, i // 6, i % 6)
            self._recent_buttons.append(b)
        colors = QHBoxLayout()
        colors.addWidget(self.color)
        colors.addLayout(self.recent)
        colors.addStretch(1)
        form.addRow("Colour", colors)

        self.tolerance = QSpinBox()
        self.tolerance.setRange(0, 255)
        self.tolerance.valueChanged.connect(lambda v: state.set(fill_tolerance=v))
        form.addRow("Fill tolerance", self.tolerance)

        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        for mode, icon, tip in (
            ("replace", "mdi6.selection", "New selection"),
            ("add", "mdi6.selection-ellipse-arrow-inside", "Add to the selection (or hold Shift)"),
            ("subtract", "mdi6.selection-remove", "Subtract from the selection (or hold Alt)"),
        ):
            b = QToolButton()
            b.setIcon(qta.icon(icon))
            b.setToolTip(tip)
            b.setCheckable(True)
            b.setProperty("mode", mode)
            self.mode_group.addButton(b)
            modes.addWidget(b)
        modes.addStretch(1)
        self.mode_group.buttonClicked.connect(lambda b: state.set(select_mode=b.property("mode")))
        form.addRow("Selection", modes)

        self.transform_row = QWidget()
        tr = QHBoxLayout(self.transform_row)
        tr.setContentsMargins(0, 0, 0, 0)
        self.flip_h = _tool_button("mdi6.flip-horizontal", "Flip horizontally")
        self.flip_v = _tool_button("mdi6.flip-vertical", "Flip vertically")
        # Icon buttons: a wider row would widen the dock and shift the canvas under the handles.
        self.apply_transform = _tool_button("mdi6.check", "Apply the transform (Enter)")
        self.cancel_transform = _tool_button("mdi6.close", "Cancel the transform (Esc)")
        for w in (self.flip_h, self.flip_v, self.apply_transform, self.cancel_transform):
            tr.addWidget(w)
        tr.addStretch(1)
        form.addRow("Transform", self.transform_row)
        self._form = form
        state.tool_changed.connect(self._tool)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(form)
        lay.addStretch(1)
        state.changed.connect(self._sync)
        state.recent_changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        s = self.state
        for widget, value in (
            (self.size_slider, round(s.size)),
            (self.hardness, round(s.hardness * 100)),
            (self.opacity, round(s.opacity * 100)),
            (self.smoothing, round(s.smoothing * 100)),
            (self.tolerance, s.fill_tolerance),
        ):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.size_label.setText(f"{s.size:.0f} px")
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(max(0, self.preset.findData(s.preset)))
        self.preset.blockSignals(False)
        self.pressure.blockSignals(True)
        self.pressure.setChecked(s.pressure)
        self.pressure.blockSignals(False)
        self.color.setStyleSheet(_swatch_style(s.color))
        for i, b in enumerate(self._recent_buttons):
            if i < len(s.recent):
                b.setStyleSheet(_swatch_style(s.recent[i]))
                b.setToolTip(s.recent[i].name())
                b.setEnabled(True)
            else:
                b.setStyleSheet("background:transparent; border:1px dashed #555; border-radius:3px;")
                b.setEnabled(False)
        for button in self.mode_group.buttons():
            button.setChecked(button.property("mode") == s.select_mode)

    def bind_transform(self, tool: TransformTool) -> None:
        self.flip_h.clicked.connect(lambda: tool.flip(horizontal=True))
        self.flip_v.clicked.connect(lambda: tool.flip(horizontal=False))
        self.apply_transform.clicked.connect(tool.apply)
        self.cancel_transform.clicked.connect(tool.cancel)
        tool.on_change = lambda: self._transforming(tool.busy())
        self._tool(self.state.tool)

    def _transforming(self, on: bool) -> None:
        self.apply_transform.setEnabled(on)
        self.cancel_transform.setEnabled(on)

    def _tool(self, key: str) -> None:
        self._form.setRowVisible(self.transform_row, key == "transform")

    def _choose(self) -> None:
        color = QColorDialog.getColor(self.state.color, self, "Brush colour")
        if color.isValid():
            self.state.set_color(color)
            self.state.remember_color()

    def _use_recent(self, i: int) -> None:
        if i < len(self.state.recent):
            self.state.set_color(self.state.recent[i])


def _tool_button(icon: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setIcon(qta.icon(icon))
    b.setToolTip(tip)
    return b


def _row(*widgets: QWidget) -> QHBoxLayout:
    lay = QHBoxLayout()
    for w in widgets:
        lay.addWidget(w)
    return lay
