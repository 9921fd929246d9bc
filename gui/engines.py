"""Access to the engine from the app: one shared Engine, created lazily on the worker thread (loading
torch and a prior takes seconds, which must not freeze the window), and the list of models."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Kinds (sources.folder_kind) that are Stable Diffusion: what LoRA files and ControlNets apply to.
ADDON_KINDS = ("latent", "sdxl", "single-file")


@dataclass(frozen=True)
class ModelChoice:
    name: str
    kind: str  # as core.models reports it; "+text", latent and SDXL kinds take prompts

    @property
    def takes_text(self) -> bool:
        return "+text" in self.kind or self.kind.startswith(("latent", "sdxl", "single-file", "sd"))


def _real_engine() -> Any:
    from noisebrush.core.engine.engine import Engine

    return Engine()


class EngineHolder:
    """Thread-safe lazy holder; tests pass a factory for a small fake engine."""

    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        self._factory = factory or _real_engine
        self._engine: Any = None
        self._lock = threading.Lock()
        self._vocab: dict[str, list[str] | None] = {}
        self._warm: tuple[str, str] | None = None
        self._addons_refused: dict[str, str] = {}

    def is_warm(self, model: str, device: str) -> bool:
        """Whether `model` on `device` has run already and so is loaded. The engine keeps one prior
        loaded (its default), so only the last model run counts; core offers no query of its own."""
        return self._warm == (model, device)

    def mark_warm(self, model: str, device: str) -> None:
        """Called by a job once a run on `model` has finished (from the worker thread)."""
        self._warm = (model, device)

    def get(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = self._factory()
            return self._engine

    def vocabulary(self, model: str) -> list[str] | None:
        """The prior's closed vocabulary (None = free text); loads the prior, so call off the GUI thread."""
        if model not in self._vocab:
            self._vocab[model] = self.get().vocabulary(model)
        return self._vocab[model]

    def concept_scale(self, model: str) -> float:
        """The model's SEGA scale for new concepts: a small JSON read, no torch, so fine on the GUI thread."""
        from noisebrush.core.engine.sources import concept_scale, model_concept_scale
        from noisebrush.core.errors import BadInput

        try:
            return model_concept_scale(model)
        except (BadInput, OSError, ValueError):  # unknown or unreadable model: the run will say why
            return concept_scale({})

    def addons_refused(self, model: str) -> str:
        """Why `model` cannot take LoRA files or a ControlNet (both are for Stable Diffusion, as the engine
        says when it refuses them), or "" when it can or cannot be told without loading it (the run will
        say). Read from the model's configs alone, no torch: fine on the GUI thread."""
        if model not in self._addons_refused:
            from noisebrush.core.engine.sources import folder_kind, resolve_model
            from noisebrush.core.errors import BadInput

            try:
                path = resolve_model(model)
            except (BadInput, OSError):
                kind = "unknown"
            else:
                kind = folder_kind(path) if path.is_dir() else "single-file"
            takes = kind == "unknown" or kind.startswith(ADDON_KINDS)
            who = "the bundled prior" if model == "default" else Path(model).name
            self._addons_refused[model] = "" if takes else f"{who} is a {kind} model"
        return self._addons_refused[model]


def list_model_choices() -> list[ModelChoice]:
    """Models the engine can find, the bundled `default` first; `default` alone if none are found."""
    try:
        from noisebrush.core.engine.sources import list_models

        found = [ModelChoice(m.name, m.kind) for m in list_models()]
    except Exception:  # a broken model folder must not stop the app from starting
        found = []
    found.sort(key=lambda m: (m.name != "default", m.name))
    if not any(m.name == "default" for m in found):
        found.insert(0, ModelChoice("default", "pixel-vp"))
    return found
