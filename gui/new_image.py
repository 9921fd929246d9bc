"""The New Image dialog: width and height in one place, with the sizes painters and models want."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QSpinBox,
    QWidget,
)

MIN_SIDE, MAX_SIDE = 8, 16384
CUSTOM = "Custom"
# (label, width, height): the models' native sizes first (docs/REFERENCE: SD 1.x 512, SDXL 1024,
# the bundled prior 64, upscaled 256), then common screen and photo shapes.
PRESETS: tuple[tuple[str, int, int], ...] = (
    ("Bundled prior, 256 \u00d7 256", 256, 256),
    ("SD 1.x square, 512 \u00d7 512", 512, 512),
    ("SD 1.x landscape, 768 \u00d7 512", 768, 512),
    ("SD 2.x square, 768 \u00d7 768", 768, 768),
    ("SDXL square, 1024 \u00d7 1024", 1024, 1024),
    ("4:3, 1024 \u00d7 768", 1024, 768),
    ("Full HD, 1920 \u00d7 1080", 1920, 1080),
    ("A4 at 150 dpi, 1240 \u00d7 1754", 1240, 1754),
)


class NewImageDialog(QDialog):
    def __init__(self, width: int, height: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New image")
        self.preset = QComboBox()
        self.preset.addItem(CUSTOM, None)
        for label, w, h in PRESETS:
            self.preset.addItem(label, f"{w}x{h}")
        self.width_box = _side(width)
        self.height_box = _side(height)
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow("Width (pixels)", self.width_box)
        form.addRow("Height (pixels)", self.height_box)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.preset.currentIndexChanged.connect(self._preset_picked)
        self.width_box.valueChanged.connect(self._size_edited)
        self.height_box.valueChanged.connect(self._size_edited)
        self._size_edited()

    def image_size(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()

    def _preset_picked(self, index: int) -> None:
        size = self.preset.itemData(index)
        if size is None:
            return
        for box, value in zip((self.width_box, self.height_box), map(int, size.split("x")), strict=True):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def _size_edited(self) -> None:
        """The preset list names the size typed in, or says Custom."""
        i = self.preset.findData("{}x{}".format(*self.image_size()))
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(max(0, i))
        self.preset.blockSignals(False)


def _side(value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(MIN_SIDE, MAX_SIDE)
    box.setValue(max(MIN_SIDE, min(MAX_SIDE, value)))
    box.setSuffix(" px")
    return box
