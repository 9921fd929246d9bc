"""The SDEdit panel: model, strength (faithful ... realistic), steps, seed with lock, variations,
prompts, where to apply, LoRA files and a ControlNet (panels/addons.py); Generate and Cancel always visible;
variation stepping after a run; the Live toggle and Apply. The number widgets take their range, default and
tooltip from SDEditRequest's fields."""

from __future__ import annotations

import qtawesome as qta
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noisebrush.gui.engines import ModelChoice
from noisebrush.gui.generation import SPECS, SDEditController
from noisebrush.gui.live import LiveController
from noisebrush.gui.panels.addons import ControlSection, LoraPicker
from noisebrush.gui.panels.fields import Bound, slider, spin_box
from noisebrush.gui.panels.scroll import options_scroll

WHERE_LABELS = (
    ("selection", "Selection (what you see)"),
    ("layer", "Active layer"),
    ("layers", "Every selected layer"),
)


class SDEditPanel(QWidget):
    def __init__(
        self, ctl: SDEditController, live: LiveController | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctl = ctl
        self.live = live
        # Each number widget and the request field it shows (tests/gui/test_fields_gui.py checks them).
        self.bounds = {
            "strength": Bound(SPECS["strength"], per_unit=100),
            "steps": Bound(SPECS["steps"], none_text="model default"),
            "seed": Bound(SPECS["seed"]),
            "variations": Bound(SPECS["variations"]),
        }
        self.models: list[ModelChoice] = []
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)

        self.model = QComboBox()
        self.model.currentIndexChanged.connect(self._model_picked)
        form.addRow("Model", self.model)

        b = self.bounds
        self.strength = slider(b["strength"])
        self.strength.valueChanged.connect(lambda v: ctl.set_options(strength=b["strength"].from_widget(v)))
        self.strength_value = QLabel()
        ends = QHBoxLayout()
        faithful, realistic = QLabel("faithful"), QLabel("realistic")
        for lab in (faithful, realistic):
            lab.setStyleSheet("color: palette(mid); font-size: 10px;")
        ends.addWidget(faithful)
        ends.addStretch(1)
        ends.addWidget(self.strength_value)
        ends.addStretch(1)
        ends.addWidget(realistic)
        strength_box = QVBoxLayout()
        strength_box.setSpacing(0)
        strength_box.addWidget(self.strength)
        strength_box.addLayout(ends)
        form.addRow("Strength", strength_box)

        self.steps = spin_box(b["steps"])
        self.steps.valueChanged.connect(lambda v: ctl.set_options(steps=b["steps"].from_widget(v)))
        form.addRow("Steps", self.steps)

        self.seed = spin_box(b["seed"])
        self.seed.valueChanged.connect(lambda v: ctl.set_options(seed=v))
        self.seed_lock = QToolButton()
        self.seed_lock.setCheckable(True)
        self.seed_lock.setToolTip("Lock the seed (otherwise each Generate picks a new one)")
        self.seed_lock.toggled.connect(lambda on: ctl.set_options(seed_locked=on))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_lock)
        form.addRow("Seed", seed_row)

        self.variations = spin_box(b["variations"])
        self.variations.valueChanged.connect(lambda v: ctl.set_options(variations=v))
        form.addRow("Variations", self.variations)

        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("what the result should show")
        self.prompt.textChanged.connect(lambda t: ctl.set_options(prompt=t))
        form.addRow("Prompt", self.prompt)
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("what to avoid")
        self.negative.textChanged.connect(lambda t: ctl.set_options(negative_prompt=t))
        form.addRow("Negative", self.negative)

        self.where_group = QButtonGroup(self)
        where_box = QVBoxLayout()
        where_box.setSpacing(0)
        for key, label in WHERE_LABELS:
            rb = QRadioButton(label)
            rb.setProperty("where", key)
            self.where_group.addButton(rb)
            where_box.addWidget(rb)
        self.where_group.buttonClicked.connect(lambda b: ctl.set_options(where=b.property("where")))
        self.shared_noise = QCheckBox("Shared noise")
        self.shared_noise.setToolTip(
            "Every layer starts from the seed's noise, so what is the same in each layer stays the same "
            "(frames of an animation); off: layer n uses seed + n, as separate runs would"
        )
        self.shared_noise.toggled.connect(lambda on: ctl.set_options(shared_noise=on))
        under_layers = QHBoxLayout()  # indented under "Every selected layer", shown with it only (_sync)
        under_layers.addSpacing(20)
        under_layers.addWidget(self.shared_noise)
        where_box.addLayout(under_layers)
        form.addRow("Apply to", where_box)

        self.generate = QPushButton(qta.icon("mdi6.creation"), " Generate")
        self.generate.setDefault(True)
        self.generate.setMinimumHeight(32)
        self.generate.clicked.connect(ctl.generate)
        self.cancel = QPushButton(qta.icon("mdi6.close-circle-outline"), " Cancel")
        self.cancel.setMinimumHeight(32)
        self.cancel.clicked.connect(ctl.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate, 2)
        buttons.addWidget(self.cancel, 1)

        self.live_toggle = QPushButton(qta.icon("mdi6.motion-play-outline"), " Live")
        self.live_toggle.setCheckable(True)
        # The dark theme draws a checked button much like an unchecked one: Live must be seen to be on.
        self.live_toggle.setStyleSheet(
            "QPushButton:checked { background-color: palette(highlight); color: palette(highlighted-text); }"
        )
        self.live_toggle.setToolTip(
            "Live mode (Ctrl+L): each stroke, fill or slider move re-runs SDEdit of the selection (or the "
            "canvas) with this seed; the result shows over the canvas until you apply it"
        )
        self.apply = QPushButton(qta.icon("mdi6.check-bold"), " Apply")
        self.apply.setToolTip("Add the result on show as a new layer (Enter)")
        live_row = QHBoxLayout()
        live_row.addWidget(self.live_toggle, 2)
        live_row.addWidget(self.apply, 1)
        if live is not None:
            self.live_toggle.toggled.connect(live.set_enabled)
            live.enabled_changed.connect(self._live)
            self.apply.clicked.connect(lambda: live.apply())
            live.history.overlay_changed.connect(lambda e: self.apply.setEnabled(e is not None))
        self.apply.setEnabled(False)

        self.prev_var = QToolButton()
        self.prev_var.setIcon(qta.icon("mdi6.chevron-left"))
        self.prev_var.clicked.connect(lambda: ctl.step_variation(-1))
        self.next_var = QToolButton()
        self.next_var.setIcon(qta.icon("mdi6.chevron-right"))
        self.next_var.clicked.connect(lambda: ctl.step_variation(1))
        self.var_label = QLabel("")
        self.keep = QPushButton(qta.icon("mdi6.check"), " Keep")
        self.keep.clicked.connect(ctl.keep_variation)
        self.var_row = QWidget()
        var = QGridLayout(self.var_row)
        var.setContentsMargins(0, 0, 0, 0)
        var.addWidget(QLabel("Variation"), 0, 0)
        var.addWidget(self.prev_var, 0, 1)
        var.addWidget(self.var_label, 0, 2, Qt.AlignmentFlag.AlignCenter)
        var.addWidget(self.next_var, 0, 3)
        var.addWidget(self.keep, 0, 4)

        # The options scroll when the dock is short; Generate and Cancel stay below them, always shown.
        options = QWidget()
        inner = QVBoxLayout(options)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(form)
        self.loras = LoraPicker(ctl)
        self.control = ControlSection(ctl)
        inner.addWidget(self.loras)
        inner.addWidget(self.control)
        inner.addWidget(self.var_row)
        inner.addStretch(1)
        self.options_scroll = options_scroll(options)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.options_scroll, 1)
        lay.addLayout(live_row)
        lay.addLayout(buttons)

        ctl.options_changed.connect(self._sync)
        ctl.running_changed.connect(self._running)
        ctl.variations_changed.connect(self._variations)
        self._sync()
        self._running(False)
        self._variations(0, 0)

    def set_models(self, models: list[ModelChoice]) -> None:
        self.models = models
        self.model.blockSignals(True)
        self.model.clear()
        for m in models:
            self.model.addItem(qta.icon("mdi6.cube-outline"), m.name, m.name)
            self.model.setItemData(self.model.count() - 1, m.kind, Qt.ItemDataRole.ToolTipRole)
        i = max(0, self.model.findData(self.ctl.options.model))
        self.model.setCurrentIndex(i)
        self.model.blockSignals(False)
        self._model_picked(i)

    def _model_picked(self, i: int) -> None:
        if 0 <= i < len(self.models):
            self.ctl.set_options(model=self.models[i].name)
        self._text_enabled()

    def set_vocabulary(self, words: list[str] | None) -> None:
        """A closed-vocabulary prior takes its own words as prompts."""
        self._vocab = words
        self._text_enabled()

    _vocab: list[str] | None = None

    def _text_enabled(self) -> None:
        i = self.model.currentIndex()
        takes = (0 <= i < len(self.models) and self.models[i].takes_text) or bool(self._vocab)
        for w in (self.prompt, self.negative):
            w.setEnabled(takes)
        hint = "this model takes no text" if not takes else "what the result should show"
        if self._vocab:
            hint = "words: " + ", ".join(self._vocab[:8]) + ("\u2026" if len(self._vocab) > 8 else "")
        self.prompt.setPlaceholderText(hint)
        self.prompt.setToolTip(", ".join(self._vocab) if self._vocab else "")

    def _sync(self) -> None:
        o = self.ctl.options
        for w, v in (
            (self.strength, self.bounds["strength"].to_widget(o.strength)),
            (self.steps, self.bounds["steps"].to_widget(o.steps)),
            (self.seed, self.bounds["seed"].to_widget(o.seed)),
            (self.variations, self.bounds["variations"].to_widget(o.variations)),
        ):
            if w.value() != v:
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)
        self.strength_value.setText(f"{o.strength:.2f}")
        i = self.model.findData(o.model)
        if i >= 0 and i != self.model.currentIndex():
            self.model.blockSignals(True)
            self.model.setCurrentIndex(i)
            self.model.blockSignals(False)
        self.seed_lock.blockSignals(True)
        self.seed_lock.setChecked(o.seed_locked)
        self.seed_lock.blockSignals(False)
        self.seed_lock.setIcon(qta.icon("mdi6.lock" if o.seed_locked else "mdi6.lock-open-variant-outline"))
        for b in self.where_group.buttons():
            b.setChecked(b.property("where") == o.where)
        self.shared_noise.blockSignals(True)
        self.shared_noise.setChecked(o.shared_noise)
        self.shared_noise.blockSignals(False)
        self.shared_noise.setVisible(o.where == "layers")

    def _live(self, on: bool) -> None:
        self.live_toggle.blockSignals(True)
        self.live_toggle.setChecked(on)
        self.live_toggle.blockSignals(False)
        self.live_toggle.setText(" Live: on" if on else " Live")

    def _running(self, running: bool) -> None:
        self.generate.setEnabled(not running)
        self.cancel.setEnabled(running)

    def _variations(self, index: int, count: int) -> None:
        self.var_row.setVisible(count > 1)
        self.var_label.setText(f"{index + 1} / {count}")
