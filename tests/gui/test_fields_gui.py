"""The Studio's forms derive from the request fields (one source): every default the panels start from and
every number widget's range and tooltip equal the request's spec, so a drift fails here."""

from __future__ import annotations

import dataclasses

import pytest

from noisebrush.core.engine.fields import specs
from noisebrush.core.engine.requests import Concept, LeditsRequest, SDEditRequest
from noisebrush.gui.generation import SDEditOptions
from noisebrush.gui.ledits import ConceptSetting, LeditsOptions

QT_INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("options", "request_cls"), [(SDEditOptions, SDEditRequest), (LeditsOptions, LeditsRequest)]
)
def test_option_defaults_are_the_request_defaults(options, request_cls):
    fields = specs(request_cls)
    shared = [f.name for f in dataclasses.fields(options) if f.name in fields]
    assert len(shared) >= 4, shared
    made = options()
    for name in shared:
        assert getattr(made, name) == fields[name].default, name


def test_a_new_concept_scale_fits_the_concept_field():
    spec = specs(Concept)["scale"]
    assert spec.low <= ConceptSetting("x").scale <= spec.high


def _expected_range(spec, per_unit: int, takes_none: bool) -> tuple[int, int]:
    """What the widget must offer, worked out from the spec alone."""
    low = round(spec.low * per_unit) - (1 if takes_none else 0)
    high = round(spec.high * per_unit) - (1 if spec.high_open else 0)
    return low, min(high, QT_INT_MAX)


def _check_widget(widget, spec, per_unit: int, takes_none: bool) -> None:
    assert (widget.minimum(), widget.maximum()) == _expected_range(spec, per_unit, takes_none), spec.name
    help_words = spec.help.split()[:3]
    assert " ".join(help_words).lower() in widget.toolTip().lower(), spec.name


def test_sdedit_panel_widgets_follow_the_request(window):
    panel = window.sdedit_panel
    fields = specs(SDEditRequest)
    widgets = {"strength": (panel.strength, 100), "steps": (panel.steps, 1), "seed": (panel.seed, 1)}
    widgets["variations"] = (panel.variations, 1)
    assert set(panel.bounds) == set(widgets)
    for name, (widget, per_unit) in widgets.items():
        spec = fields[name]
        _check_widget(widget, spec, per_unit, takes_none=spec.default is None)
        if spec.default is not None:
            assert widget.value() == round(spec.default * per_unit), name
        else:
            assert widget.value() == widget.minimum() and widget.specialValueText()
    panel.steps.setValue(panel.steps.minimum())
    assert window.sdedit.options.steps is None  # the lowest step is the model's own default
    panel.strength.setValue(panel.strength.maximum())
    assert window.sdedit.options.strength == fields["strength"].high


def test_ledits_panel_widgets_follow_the_request(window):
    panel = window.ledits_panel
    fields = specs(LeditsRequest)
    _check_widget(panel.steps, fields["steps"], 1, takes_none=True)
    _check_widget(panel.skip, fields["skip"], 100, takes_none=False)
    assert panel.skip.value() == round(fields["skip"].default * 100)
    panel.skip.setValue(panel.skip.maximum())
    assert window.ledits.options.skip < fields["skip"].high  # an open bound stays out of reach
    window.ledits.add_concept("snow", scale=7.0)
    row = panel.rows[0]
    _check_widget(row.scale, specs(Concept)["scale"], 10, takes_none=False)
    assert row.scale.value() == 70


def test_control_scale_and_lora_weight_follow_the_request(window):
    from noisebrush.core.engine.requests import MAX_LORA_WEIGHT, Lora
    from noisebrush.gui.generation import LORA_WEIGHT

    section = window.sdedit_panel.control
    spec = specs(SDEditRequest)["control_scale"]
    _check_widget(section.scale, spec, 100, takes_none=False)
    assert section.scale.value() == round(spec.default * 100)
    section.scale.setValue(section.scale.maximum())
    assert window.sdedit.options.control_scale == spec.high
    # A LoRA's weight is a (path, weight) pair on the request, checked by check_loras against MAX_LORA_WEIGHT.
    assert (LORA_WEIGHT.low, LORA_WEIGHT.high, LORA_WEIGHT.default) == (
        -MAX_LORA_WEIGHT,
        MAX_LORA_WEIGHT,
        Lora("x").weight,
    )
