"""Observable tool settings: the brush (size, hardness, opacity, colour, recent colours, pressure),
the current tool and the selection mode."""

from __future__ import annotations

from PyQt6.QtCore import QObject, QSettings, pyqtSignal
from PyQt6.QtGui import QColor

TOOLS = (
    "brush",
    "eraser",
    "picker",
    "fill",
    "rect",
    "ellipse",
    "lasso",
    "maskbrush",
    "pan",
    "move",
    "transform",
)
SELECT_MODES = ("replace", "add", "subtract")
MAX_RECENT = 12


class ToolState(QObject):
    changed = pyqtSignal()
    tool_changed = pyqtSignal(str)
    recent_changed = pyqtSignal()

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tool = "brush"
        self.size = 24.0  # diameter in document pixels
        self.hardness = 0.7
        self.opacity = 1.0
        self.color = QColor(30, 30, 30)  # the foreground colour: what the brush and fill lay down
        self.background = QColor(255, 255, 255)
        self.recent: list[QColor] = []
        self.pressure = True  # tablet pressure scales size and opacity
        self.smoothing = 0.0  # 0..1, how much the brush trails the pointer to steady a shaky hand
        self.preset = "Round"
        self.select_mode = "replace"
        self.fill_tolerance = 32
        self.feather = 8
        self._settings = settings
        if settings is not None:
            self.size = float(settings.value("brush/size", self.size))
            self.hardness = float(settings.value("brush/hardness", self.hardness))
            self.opacity = float(settings.value("brush/opacity", self.opacity))
            self.smoothing = min(1.0, max(0.0, float(settings.value("brush/smoothing", self.smoothing))))
            self.color = QColor(str(settings.value("brush/color", self.color.name())))
            self.background = QColor(str(settings.value("brush/background", self.background.name())))
            names = settings.value("brush/recent", []) or []
            self.recent = [
                QColor(n) for n in (names if isinstance(names, list) else [names]) if QColor(n).isValid()
            ]

    def save(self) -> None:
        if self._settings is None:
            return
        s = self._settings
        s.setValue("brush/size", self.size)
        s.setValue("brush/hardness", self.hardness)
        s.setValue("brush/opacity", self.opacity)
        s.setValue("brush/smoothing", self.smoothing)
        s.setValue("brush/color", self.color.name())
        s.setValue("brush/background", self.background.name())
        s.setValue("brush/recent", [c.name() for c in self.recent])

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; allowed: {', '.join(TOOLS)}")
        if tool != self.tool:
            self.tool = tool
            self.tool_changed.emit(tool)

    def set(self, **values: object) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise AttributeError(key)
            setattr(self, key, value)
        self.changed.emit()

    def set_size(self, size: float) -> None:
        self.set(size=float(min(1000.0, max(1.0, size))))

    def bigger(self) -> None:
        self.set_size(self.size * 1.25 if self.size >= 4 else self.size + 1)

    def smaller(self) -> None:
        self.set_size(self.size / 1.25 if self.size >= 5 else self.size - 1)

    def set_color(self, color: QColor) -> None:
        self.color = QColor(color)
        self.changed.emit()

    def use_preset(self, name: str) -> None:
        from .model.brushes import preset_named

        self.set(preset=name, **preset_named(name).settings())

    def set_background(self, color: QColor) -> None:
        self.background = QColor(color)
        self.changed.emit()

    def swap_colors(self) -> None:
        """X: the foreground and background colours trade places."""
        self.color, self.background = self.background, self.color
        self.changed.emit()

    def default_colors(self) -> None:
        """D: black on white."""
        self.color, self.background = QColor(0, 0, 0), QColor(255, 255, 255)
        self.changed.emit()

    def remember_color(self) -> None:
        """Put the current colour first among the recent colours (called when it is used)."""
        name = self.color.name()
        self.recent = [c for c in self.recent if c.name() != name]
        self.recent.insert(0, QColor(self.color))
        del self.recent[MAX_RECENT:]
        self.recent_changed.emit()
