"""What the SDEdit panel adds to a Stable Diffusion model: LoRA files with a weight each, and a ControlNet with
its control image (the guide's edges or scribble, or a layer). The files are the ones the engine finds in the
models folder (core/engine/sources.py list_loras, list_controlnets); the widgets show and set the
controller's options and hold none of their own. Both sections are off, with the engine's reason, for a model
that cannot take them (the bundled prior)."""

from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.core.engine.requests import MAX_LORAS, Lora
from noisebrush.core.engine.sources import (
    CONTROL_FOLDER,
    LORA_FOLDER,
    list_controlnets,
    list_loras,
    models_dir,
)
from noisebrush.gui.generation import CONTROL_SOURCES, LORA_WEIGHT, SPECS, SDEditController
from noisebrush.gui.panels.fields import Bound, slider, tooltip

SOURCE_LABELS = {
    "none": "None",
    "edges": "Edges of the guide",
    "scribble": "Scribble of the guide",
    "layer": "A layer",
}
assert set(SOURCE_LABELS) == set(CONTROL_SOURCES)
WEIGHT_STEP = 0.05


def shown_name(path: Path, folder: str) -> str:
    """A file's name as a picker shows it: relative to the models folder's `folder` when inside it."""
    base = models_dir() / folder
    return str(path.relative_to(base)) if path.is_relative_to(base) else path.name


def _combo() -> QComboBox:
    """A combo that a long file name cannot widen the dock with."""
    c = QComboBox()
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(12)
    return c


def _refresh_button(what: str) -> QToolButton:
    b = QToolButton()
    b.setIcon(qta.icon("mdi6.refresh"))
    b.setToolTip(f"Look again for {what}")
    return b


def _set_off(box: QGroupBox, refused: str, what: str) -> None:
    box.setEnabled(not refused)
    box.setToolTip(f"{what} apply to Stable Diffusion models; {refused}" if refused else "")


class LoraRow(QWidget):
    """One chosen LoRA: its name, its weight, and a button that takes it off."""

    def __init__(self, name: str) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel(name)
        self.name.setToolTip(name)
        self.weight = QDoubleSpinBox()
        assert LORA_WEIGHT.low is not None and LORA_WEIGHT.high is not None
        self.weight.setRange(LORA_WEIGHT.low, LORA_WEIGHT.high)
        self.weight.setSingleStep(WEIGHT_STEP)
        self.weight.setDecimals(2)
        self.weight.setToolTip(tooltip(LORA_WEIGHT))
        self.remove = QToolButton()
        self.remove.setIcon(qta.icon("mdi6.close"))
        self.remove.setToolTip(f"Take {name} off")
        lay.addWidget(self.name, 1)
        lay.addWidget(self.weight)
        lay.addWidget(self.remove)


class LoraPicker(QGroupBox):
    """The LoRA files in the models folder's `loras/`; Add puts the one picked on the request at weight 1."""

    def __init__(self, ctl: SDEditController, parent: QWidget | None = None) -> None:
        super().__init__("LoRA", parent)
        self.ctl = ctl
        self.files = _combo()
        self.files.currentIndexChanged.connect(lambda _: self._sync())
        self.add = QToolButton()
        self.add.setIcon(qta.icon("mdi6.plus"))
        self.add.clicked.connect(self._add)
        self.refresh_button = _refresh_button("LoRA files")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.files, 1)
        top.addWidget(self.add)
        top.addWidget(self.refresh_button)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(2)
        self.rows: list[LoraRow] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(top)
        lay.addLayout(self.rows_box)
        ctl.options_changed.connect(self._sync)
        self.refresh()

    def refresh(self) -> None:
        """List the LoRA files on disk again (after the painter adds one)."""
        found = list_loras()
        self.files.blockSignals(True)
        self.files.clear()
        for path in found:
            self.files.addItem(shown_name(path, LORA_FOLDER), str(path))
        if not found:
            self.files.addItem("none found", "")
        self.files.setToolTip(f"LoRA .safetensors files in {models_dir() / LORA_FOLDER} (subfolders too)")
        self.files.blockSignals(False)
        self._sync()

    def _add(self) -> None:
        path = self.files.currentData()
        loras = self.ctl.options.loras
        if path and len(loras) < MAX_LORAS and all(item.path != path for item in loras):
            self.ctl.set_options(loras=(*loras, Lora(path, LORA_WEIGHT.default)))

    def _set_weight(self, index: int, weight: float) -> None:
        loras = list(self.ctl.options.loras)
        loras[index] = Lora(loras[index].path, weight)
        self.ctl.set_options(loras=tuple(loras))

    def _remove(self, index: int) -> None:
        loras = self.ctl.options.loras
        self.ctl.set_options(loras=loras[:index] + loras[index + 1 :])

    def _sync(self) -> None:
        loras = self.ctl.options.loras
        if [r.name.text() for r in self.rows] != [shown_name(Path(p), LORA_FOLDER) for p, _ in loras]:
            for row in self.rows:  # out of the layout now; deleteLater waits for the event loop
                self.rows_box.removeWidget(row)
                row.setParent(None)
                row.deleteLater()
            self.rows = []
            for i, item in enumerate(loras):
                row = LoraRow(shown_name(Path(item.path), LORA_FOLDER))
                row.weight.valueChanged.connect(lambda w, i=i: self._set_weight(i, w))
                row.remove.clicked.connect(lambda _=False, i=i: self._remove(i))
                self.rows_box.addWidget(row)
                self.rows.append(row)
        for row, item in zip(self.rows, loras, strict=True):
            if row.weight.value() != item.weight:
                row.weight.blockSignals(True)
                row.weight.setValue(item.weight)
                row.weight.blockSignals(False)
        picked = self.files.currentData()
        taken = any(item.path == picked for item in loras)
        self.add.setEnabled(bool(picked) and not taken and len(loras) < MAX_LORAS)
        self.add.setToolTip(
            "Already on the request: change its weight below"
            if taken
            else f"At most {MAX_LORAS} LoRA files"
            if len(loras) >= MAX_LORAS
            else "Add this LoRA (weight 1)"
        )
        _set_off(self, self.ctl.engines.addons_refused(self.ctl.options.model), "LoRA files")


class ControlSection(QGroupBox):
    """A ControlNet from the models folder's `controlnet/`, where its control image comes from, and its scale."""

    def __init__(self, ctl: SDEditController, parent: QWidget | None = None) -> None:
        super().__init__("Control", parent)
        self.ctl = ctl
        self.bound = Bound(SPECS["control_scale"], per_unit=100)
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)

        self.controlnet = _combo()
        self.controlnet.currentIndexChanged.connect(self._controlnet_picked)
        self.refresh_button = _refresh_button("ControlNets")
        self.refresh_button.clicked.connect(self.refresh)
        net_row = QHBoxLayout()
        net_row.addWidget(self.controlnet, 1)
        net_row.addWidget(self.refresh_button)
        form.addRow("ControlNet", net_row)

        self.source = _combo()
        for key in CONTROL_SOURCES:
            self.source.addItem(SOURCE_LABELS[key], key)
        self.source.setToolTip(
            "The control image: none (no ControlNet runs), lines the engine finds in the guide, or a layer's "
            "pixels over the guide's box (it may be hidden)"
        )
        self.source.currentIndexChanged.connect(self._source_picked)
        form.addRow("Image", self.source)

        self.layer = _combo()
        self.layer.setToolTip("The layer whose pixels steer the edit")
        self.layer.currentIndexChanged.connect(
            lambda _: ctl.set_options(control_layer=self.layer.currentData())
        )
        self.layer_label = QLabel("Layer")
        form.addRow(self.layer_label, self.layer)

        self.scale = slider(self.bound)
        self.scale.valueChanged.connect(lambda v: ctl.set_options(control_scale=self.bound.from_widget(v)))
        self.scale_value = QLabel()
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale, 1)
        scale_row.addWidget(self.scale_value)
        form.addRow("Scale", scale_row)

        ctl.options_changed.connect(self._sync)
        ctl.doc.layers_changed.connect(self._list_layers)
        self._list_layers()
        self.refresh()

    def refresh(self) -> None:
        """List the ControlNets on disk again; the first is picked when none is."""
        found = list_controlnets()
        self.controlnet.blockSignals(True)
        self.controlnet.clear()
        for path in found:
            self.controlnet.addItem(shown_name(path, CONTROL_FOLDER), str(path))
        if not found:
            self.controlnet.addItem("none found", "")
        self.controlnet.setToolTip(f"{tooltip(SPECS['controlnet'])}, in {models_dir() / CONTROL_FOLDER}")
        self.controlnet.blockSignals(False)
        if found and self.controlnet.findData(self.ctl.options.controlnet) < 0:
            self.ctl.set_options(controlnet=str(found[0]))
        self._sync()

    def _controlnet_picked(self, _: int) -> None:
        if self.controlnet.currentData():
            self.ctl.set_options(controlnet=self.controlnet.currentData())

    def _source_picked(self, _: int) -> None:
        source = self.source.currentData()
        if source == "layer" and self.layer.findData(self.ctl.options.control_layer) < 0:
            # The layer on show, else the top one: the painter sees which and can pick another.
            picked = self.layer.itemData(max(0, self.layer.currentIndex()))
            self.ctl.set_options(control_source=source, control_layer=picked)
        else:
            self.ctl.set_options(control_source=source)

    def _list_layers(self) -> None:
        """The document's layers, top first as the layers panel shows them."""
        self.layer.blockSignals(True)
        self.layer.clear()
        for la in reversed(self.ctl.doc.layers):
            self.layer.addItem(la.name, la.uid)
        self.layer.blockSignals(False)
        self._sync()

    def _sync(self) -> None:
        o = self.ctl.options
        for combo, value in (
            (self.controlnet, o.controlnet),
            (self.source, o.control_source),
            (self.layer, o.control_layer),
        ):
            i = combo.findData(value)  # -1 (blank) for a layer no longer in the document
            if i != combo.currentIndex() and (i >= 0 or combo is self.layer):
                combo.blockSignals(True)
                combo.setCurrentIndex(i)
                combo.blockSignals(False)
        v = self.bound.to_widget(o.control_scale)
        if self.scale.value() != v:
            self.scale.blockSignals(True)
            self.scale.setValue(v)
            self.scale.blockSignals(False)
        self.scale_value.setText(f"{o.control_scale:.2f}")
        has_net = bool(self.controlnet.currentData())
        for w in (self.source, self.layer, self.scale):
            w.setEnabled(has_net)
        self.layer.setVisible(o.control_source == "layer")
        self.layer_label.setVisible(o.control_source == "layer")
        _set_off(self, self.ctl.engines.addons_refused(o.model), "ControlNets")
