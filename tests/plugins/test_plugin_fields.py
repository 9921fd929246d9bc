"""No plugin repeats an engine default or bound: the Krita docker's widgets and the GIMP procedures'
arguments show the range, default and help of nb_fields.py (generated from the engine's requests)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import gimp_logic
import pytest
from nb_fields import FIELDS
from test_krita_docker_qt6 import docker_module  # noqa: F401  (the docker on PyQt6 with a stand-in krita)

INT_MAX = 2**31 - 1  # Qt's spin boxes and GIMP's int arguments are 32-bit


def expected(kind: str, name: str) -> tuple[Any, Any, Any, str]:
    """(default, low, high, help) a plugin widget or argument for this job field must show."""
    f = FIELDS[kind][name]
    if name == "steps":  # the request's None (the model's schedule) is 0 in both plugins
        return 0, 0, min(f["high"], INT_MAX), f["help"]
    if f["low"] is None:
        return f["default"], None, None, f["help"]
    high = min(f["high"], INT_MAX) if isinstance(f["high"], int) else f["high"]
    return f["default"], f["low"], high, f["help"]


# GIMP argument -> job field, per procedure
GIMP_FIELDS = {
    "sdedit": {
        "model": "model",
        "strength": "strength",
        "steps": "steps",
        "seed": "seed",
        "variations": "variations",
        "prompt": "prompt",
        "negative-prompt": "negative_prompt",
    },
    "ledits": {"model": "model", "skip": "skip", "steps": "steps", "seed": "seed", "prompt": "target_prompt"},
}


class FakeProcedure:
    """Records what noisebrush-gimp.py registers with GIMP."""

    def __init__(self) -> None:
        self.args: dict[str, dict[str, Any]] = {}

    def add_string_argument(self, name: str, label: str, blurb: str, default: str, flags: Any) -> None:
        self.args[name] = {"default": default, "low": None, "high": None, "help": blurb}

    def add_boolean_argument(self, name: str, label: str, blurb: str, default: bool, flags: Any) -> None:
        self.args[name] = {"default": default, "low": None, "high": None, "help": blurb}

    def add_int_argument(
        self, name: str, label: str, blurb: str, low: int, high: int, default: int, f: Any
    ) -> None:
        self.args[name] = {"default": default, "low": low, "high": high, "help": blurb}

    def add_double_argument(
        self, name: str, label: str, blurb: str, low: float, high: float, d: float, f: Any
    ) -> None:
        self.args[name] = {"default": d, "low": low, "high": high, "help": blurb}


def gimp_script(gimp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """noisebrush-gimp.py imported with a stand-in `gi` (GIMP's own is only inside GIMP)."""
    repo = types.SimpleNamespace(
        Gimp=types.SimpleNamespace(PlugIn=object),
        GLib=types.SimpleNamespace(),
        GObject=types.SimpleNamespace(ParamFlags=types.SimpleNamespace(READWRITE=3)),
    )
    gi = types.ModuleType("gi")
    gi.require_version = lambda *a: None  # type: ignore[attr-defined]
    gi.repository = repo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gi", gi)
    monkeypatch.setitem(sys.modules, "gi.repository", repo)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "gimp_host", types.ModuleType("gimp_host"))
    spec = importlib.util.spec_from_file_location("nb_gimp_script", gimp_dir / "noisebrush-gimp.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("kind", ["sdedit", "ledits"])
def test_gimp_arguments_show_the_engine_fields(
    kind: str, installed_plugins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = gimp_script(installed_plugins[1], monkeypatch)
    proc = FakeProcedure()
    for arg in gimp_logic.args_for(kind):
        script.add_argument(proc, arg)
    for name, field in GIMP_FIELDS[kind].items():
        default, low, high, help_ = expected(kind, field)
        got = proc.args[name]
        assert (got["default"], got["low"], got["high"]) == (default, low, high), (kind, name)
        assert got["help"].startswith(help_), (kind, name)
    # the texts sit together in the dialog, not apart
    groups = [a.group for a in gimp_logic.args_for(kind)]
    assert groups == sorted(groups, key=list(gimp_logic.GROUPS).index)
    texts = [a.name for a in gimp_logic.args_for(kind) if a.group == "text"]
    assert "prompt" in texts and ("negative-prompt" in texts or "concepts" in texts)


def test_krita_docker_widgets_show_the_engine_fields(qtbot: Any, docker_module: types.ModuleType) -> None:  # noqa: F811
    docker = docker_module.NoiseBrushDocker()
    qtbot.addWidget(docker)
    assert set(docker.fields) >= {"strength", "skip", "steps", "seed", "variations", "context", "prompt"}
    for name, (widget, kind, field) in docker.fields.items():
        default, low, high, help_ = expected(kind, field)
        assert widget.toolTip() == help_ if name != "steps" else widget.toolTip().startswith(help_), name
        if low is None:
            assert widget.text() == default, name
            continue
        assert (widget.value(), widget.minimum(), widget.maximum()) == (
            pytest.approx(default),
            pytest.approx(low),
            pytest.approx(high),
        ), name
