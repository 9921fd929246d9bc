"""The LEDITS panel: concepts to add or remove, each with a scale slider that re-runs the edit; steps and
skip. The number widgets take their range, default and tooltip from LeditsRequest's and Concept's fields."""

from __future__ import annotations

import qtawesome as qta
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.engines import ModelChoice
from noisebrush.gui.ledits import CONCEPT_SPECS, SPECS, LeditsController
from noisebrush.gui.panels.fields import Bound, slider, spin_box
from noisebrush.gui.panels.scroll import options_scroll

SCALE = Bound(CONCEPT_SPECS["scale"], per_unit=10)


class ConceptRow(QWidget):
    def __init__(self, ctl: LeditsController, index: int, words: list[str] | None) -> None:
        super().__init__()
        c = ctl.options.concepts[index]
        self.word = QComboBox()
        self.word.setEditable(True)
        self.word.addItems(words or [])
        self.word.setCurrentText(c.text)
        self.word.setMinimumWidth(90)
        self.word.currentTextChanged.connect(
            lambda t: setattr(ctl.options.concepts[index], "text", t.strip())
        )
        self.sign = QToolButton()
        self.sign.setCheckable(True)
        self.sign.setChecked(c.remove)
        self.sign.setToolTip("Add this concept, or (checked) remove it")
        self.sign.setIcon(qta.icon("mdi6.minus-circle-outline" if c.remove else "mdi6.plus-circle-outline"))
        self.sign.toggled.connect(lambda on: self._sign(ctl, index, on))
        self.scale = slider(SCALE)
        self.scale.setValue(SCALE.to_widget(c.scale))
        self.value = QLabel(f"{c.scale:.1f}")
        self.value.setMinimumWidth(28)
        self.scale.valueChanged.connect(lambda v: self._scale(ctl, index, v))
        drop = QToolButton()
        drop.setIcon(qta.icon("mdi6.close"))
        drop.setAutoRaise(True)
        drop.setToolTip("Drop this concept")
        drop.clicked.connect(lambda: ctl.remove_concept(index))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.sign)
        lay.addWidget(self.word, 2)
        lay.addWidget(self.scale, 3)
        lay.addWidget(self.value)
        lay.addWidget(drop)

    def _sign(self, ctl: LeditsController, index: int, on: bool) -> None:
        self.sign.setIcon(qta.icon("mdi6.minus-circle-outline" if on else "mdi6.plus-circle-outline"))
        ctl.set_remove(index, on)

    def _scale(self, ctl: LeditsController, index: int, tenths: int) -> None:
        scale = float(SCALE.from_widget(tenths) or 0.0)
        self.value.setText(f"{scale:.1f}")
        ctl.set_scale(index, scale)


class LeditsPanel(QWidget):
    def __init__(self, ctl: LeditsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctl = ctl
        self.words: list[str] | None = None
        self.models: list[ModelChoice] = []
        self.model = QComboBox()
        self.model.currentIndexChanged.connect(self._model_picked)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model, 1)

        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(2)
        self.rows: list[ConceptRow] = []
        add = QPushButton(qta.icon("mdi6.plus"), " Add concept")
        add.clicked.connect(lambda: ctl.add_concept(self._first_word()))

        self.where_group = QButtonGroup(self)
        where = QHBoxLayout()
        for key, label in (
            ("selection", "Selection"),
            ("layer", "Active layer"),
            ("layers", "Selected layers"),
        ):
            rb = QRadioButton(label)
            rb.setProperty("where", key)
            rb.setChecked(key == ctl.options.where)
            self.where_group.addButton(rb)
            where.addWidget(rb)
        self.where_group.buttonClicked.connect(lambda b: self._where(b.property("where")))
        self.shared_noise = QCheckBox("Shared noise")
        self.shared_noise.setToolTip(
            "Every layer is edited from the seed's noise, so what is the same in each layer stays the same "
            "(frames of an animation); off: layer n uses seed + n"
        )
        self.shared_noise.setChecked(ctl.options.shared_noise)
        self.shared_noise.toggled.connect(lambda on: self._set("shared_noise", on))
        under_layers = QHBoxLayout()  # indented under "Selected layers", shown with it only
        under_layers.addSpacing(20)
        under_layers.addWidget(self.shared_noise)
        under_layers.addStretch(1)
        self.shared_noise.setVisible(ctl.options.where == "layers")

        # Each number widget and the request field it shows (tests/gui/test_fields_gui.py checks them).
        self.bounds = {
            "steps": Bound(SPECS["steps"], none_text="model default"),
            "skip": Bound(SPECS["skip"], per_unit=100),
        }
        self.steps = spin_box(self.bounds["steps"])
        self.steps.valueChanged.connect(lambda v: self._set("steps", self.bounds["steps"].from_widget(v)))
        self.skip = slider(self.bounds["skip"])
        self.skip_value = QLabel(f"{ctl.options.skip:.2f}")
        self.skip.valueChanged.connect(lambda v: self._set("skip", self.bounds["skip"].from_widget(v)))
        skip_row = QHBoxLayout()
        skip_row.addWidget(self.skip, 1)
        skip_row.addWidget(self.skip_value)
        numbers = QFormLayout()
        numbers.setContentsMargins(0, 0, 0, 0)
        numbers.addRow("Steps", self.steps)
        numbers.addRow("Skip", skip_row)
        self.steps.setValue(self.bounds["steps"].to_widget(ctl.options.steps))
        self.skip.setValue(self.bounds["skip"].to_widget(ctl.options.skip))

        self.apply = QPushButton(qta.icon("mdi6.auto-fix"), " Apply edit")
        self.apply.setMinimumHeight(32)
        self.apply.clicked.connect(lambda: ctl.apply(new_session=True))
        self.cancel = QPushButton(qta.icon("mdi6.close-circle-outline"), " Cancel")
        self.cancel.setMinimumHeight(32)
        self.cancel.clicked.connect(ctl.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply, 2)
        buttons.addWidget(self.cancel, 1)

        hint = QLabel("Moving a slider re-runs the edit on the same source.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid); font-size: 10px;")
        # The options scroll when the dock is short; the run buttons stay below them, always shown.
        options = QWidget()
        inner = QVBoxLayout(options)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(top)
        inner.addWidget(QLabel("Concepts"))
        inner.addLayout(self.rows_box)
        inner.addWidget(add)
        inner.addLayout(where)
        inner.addLayout(under_layers)
        inner.addLayout(numbers)
        inner.addWidget(hint)
        inner.addStretch(1)
        self.options_scroll = options_scroll(options)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.options_scroll, 1)
        lay.addLayout(buttons)
        ctl.concepts_changed.connect(self._rebuild)
        ctl.running_changed.connect(self._running)
        ctl.vocabulary_changed.connect(self.set_vocabulary)
        self._running(False)

    def set_models(self, models: list[ModelChoice]) -> None:
        self.models = models
        self.model.blockSignals(True)
        self.model.clear()
        for m in models:
            self.model.addItem(qta.icon("mdi6.cube-outline"), m.name, m.name)
        self.model.setCurrentIndex(max(0, self.model.findData(self.ctl.options.model)))
        self.model.blockSignals(False)

    def _model_picked(self, i: int) -> None:
        if 0 <= i < len(self.models):
            self.ctl.options.model = self.models[i].name
            self.ctl.end_session()
            self.ctl.load_vocabulary()

    def set_vocabulary(self, words: object) -> None:
        self.words = list(words) if isinstance(words, list) else None
        self._rebuild()

    def _where(self, where: str) -> None:
        self.ctl.options.where = where
        self.shared_noise.setVisible(where == "layers")  # only several layers share or split the noise

    def _set(self, name: str, value: object) -> None:
        setattr(self.ctl.options, name, value)
        if name == "skip":
            self.skip_value.setText(f"{self.ctl.options.skip:.2f}")
        self.ctl.schedule_rerun()

    def _first_word(self) -> str:
        return self.words[0] if self.words else ""

    def _rebuild(self) -> None:
        for r in self.rows:
            self.rows_box.removeWidget(r)
            r.hide()  # deleteLater waits for the event loop; until then the old row would paint over the panel
            r.deleteLater()
        self.rows = [ConceptRow(self.ctl, i, self.words) for i in range(len(self.ctl.options.concepts))]
        for r in self.rows:
            self.rows_box.addWidget(r)

    def _running(self, running: bool) -> None:
        self.apply.setEnabled(not running)
        self.cancel.setEnabled(running)
