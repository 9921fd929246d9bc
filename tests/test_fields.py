"""Each request field is declared once (core/engine/fields.py); these tests fail when a surface that
derives from it (the CLI, the server's JSON shapes, the plugins' generated field table and settings,
the plugins' copy of the concept parser) drifts from the request."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.cli.main import build_parser
from noisebrush.core.engine.concepts import parse_concepts
from noisebrush.core.engine.fields import specs
from noisebrush.core.engine.requests import Concept, LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput
from noisebrush.core.server import plugin_fields, wire

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "plugin" / "shared"


def _plugin_module(name: str):
    sys.path.insert(0, str(SHARED))
    try:
        spec = importlib.util.spec_from_file_location(f"_nb_{name}", SHARED / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SHARED))


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize(
    "command, classes", [("edit", [SDEditRequest]), ("ledits", [LeditsRequest, Concept])]
)
def test_cli_options_are_the_request_fields(command, classes):
    options = {a.dest: a for a in _subparser(command)._actions}
    for cls in classes:
        for spec in specs(cls).values():
            if not spec.cli:
                continue
            action = options[spec.name]
            assert spec.flag in action.option_strings
            if not isinstance(action, argparse._StoreTrueAction):
                assert action.default == spec.default, spec.name
            assert spec.help in action.help, spec.name


def test_every_cli_option_of_a_request_field_is_derived_not_redeclared():
    """A hand-written option with a field's name would shadow the derived one (argparse refuses a second
    --flag, but a different spelling would slip through): none may exist."""
    for command, cls in (("edit", SDEditRequest), ("ledits", LeditsRequest)):
        derived = set(_subparser(command).get_default("fields"))
        names = {a.dest for a in _subparser(command)._actions}
        assert {n for n in names if n in specs(cls)} == derived


def test_plugins_field_table_is_generated_from_the_requests():
    path = plugin_fields.TARGET
    assert path.read_text(encoding="utf-8") == plugin_fields.render(), (
        f"{path.relative_to(REPO)} is out of date: run .venv/bin/python -m noisebrush.core.server.plugin_fields"
    )


def test_plugin_settings_use_the_requests_defaults_and_names():
    nb_edit = _plugin_module("nb_edit")
    s, sd, le = nb_edit.Settings(), specs(SDEditRequest), specs(LeditsRequest)
    for name in ("model", "strength", "seed", "variations", "prompt", "negative_prompt", "context"):
        assert getattr(s, name) == sd[name].default, name
    assert s.skip == le["skip"].default
    plugin_only = {"kind", "concepts", "previews", "extra", "steps", "skip"}
    assert set(s.to_dict()) - plugin_only <= set(sd), "a plugin setting must take the server's field name"
    assert nb_edit.Settings.from_dict({"margin": 12}).context == 12  # settings saved by older plugins


def test_json_shapes_default_to_the_requests_defaults():
    for model, cls in ((wire.SDEditJob, SDEditRequest), (wire.LeditsJob, LeditsRequest)):
        for name, spec in specs(cls).items():
            assert model.model_fields[name].default == spec.default, name


WORDS = st.text(alphabet=st.sampled_from("abc xyz:+-,;\n.7"), max_size=30)


@given(text=WORDS)
@settings(max_examples=400, deadline=None, database=None)
def test_plugins_concept_parser_reads_the_one_syntax_as_the_engine_does(text):
    plugin = _PLUGIN_EDIT.parse_concepts
    try:
        ours = [(c.text, c.remove, c.scale) for c in parse_concepts(text)]
    except BadInput:
        with pytest.raises(ValueError):
            plugin(text)
        return
    theirs = [(c["text"], c["remove"], c.get("scale")) for c in plugin(text)]
    assert theirs == ours


_PLUGIN_EDIT = _plugin_module("nb_edit")
