"""Form widgets derived from request fields (core/engine/fields.py): a spin box or slider takes its range,
default and tooltip from the field's spec, so a panel can never drift from what the request allows.

A slider works in whole steps: `per_unit` steps per unit of the field (100: hundredths). An upper bound the
field leaves open ([low, high)) is the last step below it. A spin box whose field may be None (the model's
own default) keeps one step below the low bound for it, shown as `none_text`.
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QSlider, QSpinBox

from noisebrush.core.engine.fields import Spec

QT_INT_MAX = 2**31 - 1  # a QSpinBox holds a C int; a wider field (seeds) is cut to it


@dataclass(frozen=True)
class Bound:
    """How one widget shows one field: the widget's integer value = field value * per_unit."""

    spec: Spec
    per_unit: int = 1
    none_text: str | None = None  # the widget's lowest value stands for None

    def widget_range(self) -> tuple[int, int]:
        assert self.spec.low is not None and self.spec.high is not None, f"{self.spec.name} has no bounds"
        low = round(self.spec.low * self.per_unit)
        high = round(self.spec.high * self.per_unit) - (1 if self.spec.high_open else 0)
        if self.none_text is not None:
            low -= 1
        return max(-QT_INT_MAX, low), min(QT_INT_MAX, high)

    def to_widget(self, value: float | None) -> int:
        low, _ = self.widget_range()
        return low if value is None else round(value * self.per_unit)

    def from_widget(self, value: int) -> float | int | None:
        if self.none_text is not None and value == self.widget_range()[0]:
            return None
        return value if self.per_unit == 1 else value / self.per_unit


def tooltip(spec: Spec) -> str:
    return spec.help[:1].upper() + spec.help[1:]


def spin_box(bound: Bound) -> QSpinBox:
    box = QSpinBox()
    box.setRange(*bound.widget_range())
    if bound.none_text is not None:
        box.setSpecialValueText(bound.none_text)
    box.setValue(bound.to_widget(bound.spec.default))
    box.setToolTip(tooltip(bound.spec))
    return box


def slider(bound: Bound) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(*bound.widget_range())
    s.setSingleStep(1)
    s.setPageStep(max(1, bound.per_unit // 10))
    s.setValue(bound.to_widget(bound.spec.default))
    s.setToolTip(tooltip(bound.spec))
    return s
