"""The settings of the prior's evaluations (SDEdit's protocol and LEDITS' add/remove judgement), torch-free so
the command line can show and check them without loading the classifier or the engine."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from noisebrush.core.engine.requests import Concept, LeditsRequest
from noisebrush.core.errors import BadInput

STRENGTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the paper's grid
_CONCEPT = Concept("_")  # the request's defaults, so the evaluation runs what the CLI and the GUI run
_REQUEST: dict[str, Any] = {f.name: f.default for f in fields(LeditsRequest)}


@dataclass
class EvalConfig:
    model: str = "default"
    size: int = 64
    guides: int = 100
    reference: int = 400
    strengths: tuple[float, ...] = STRENGTHS
    unconditional: int = 100
    per_concept: int = 20
    steps: int | None = None  # None: the prior's default
    guidance: float | None = None
    seed: int = 7_000_000  # held-out: training streams are seeded with [seed, step] pairs, these with triples
    device: str = "auto"
    classifier: str = ""  # "" = the shipped one
    time_size: int = 256  # also time one SDEdit of a guide this size at t0 = 0.5 (0 = skip)
    batch: int = 50  # guides per batched SDEdit run; 1 = one Engine.sdedit call per guide
    # K, noise-and-denoise cycles per guide: the app's default is 1, SDEdit's official code uses 3
    repeats: int = 1


@dataclass
class CanvasEvalConfig:
    """SDEdit at canvas size (core/lab/evaluate_canvas.py): one stage beside the two-stage plan."""

    model: str = "default"
    sizes: tuple[int, ...] = (256, 512)
    native: int = 64  # the prior's own scale: the native run, the tiles of the concept judgement, L2's scale
    guides: int = 8
    reference: int = 16
    strengths: tuple[float, ...] = (0.3, 0.5, 0.7)
    steps: int | None = None  # None: the prior's default
    work_size: int | None = None  # the two-stage plan's composition size; None: the model's own plan
    refine_strength: float | None = None  # None: the model's default
    seed: int = 7_000_000  # held-out, as the SDEdit protocol's
    device: str = "auto"
    classifier: str = ""  # "" = the shipped one

    def validate(self) -> None:
        if self.guides < 2 or self.reference < 2:
            raise BadInput(
                f"KID needs at least 2 guides and 2 reference scenes, got {self.guides}, {self.reference}"
            )
        if not self.sizes or any(s < 8 for s in self.sizes):
            raise BadInput(f"canvas sizes must be at least 8 pixels each, got {self.sizes}")
        if self.native < 8 or (self.work_size is not None and self.work_size < 8):
            raise BadInput(
                f"native and work sizes must be at least 8 pixels, got {self.native}, {self.work_size}"
            )


@dataclass
class LeditsEvalConfig:
    model: str = "default"
    size: int = 64
    images: int = 100
    concepts: tuple[str, ...] = ()  # () = every classifier word the model knows
    scale: float | None = _CONCEPT.scale  # None: the model's default_concept_scale, as the CLI and app use
    threshold: float = _CONCEPT.threshold
    warmup: int = _CONCEPT.warmup
    steps: int | None = None  # None: the prior's default, at most 100 (as `noisebrush ledits`)
    skip: float = _REQUEST["skip"]
    momentum: float = _REQUEST["momentum"]
    seed: int = 7_000_000  # held-out, as the SDEdit protocol's (core/lab/evaluate.py), on a stream of its own
    device: str = "auto"
    classifier: str = ""  # "" = the shipped one
    examples: int = 6  # images kept for the example sheet (input, then add X per concept)

    def validate(self) -> None:
        """Fail before any model loads, with the request's own messages for the edit settings."""
        if self.images < 1:
            raise BadInput(f"images must be at least 1, got {self.images}")
        if self.size < 8:
            raise BadInput(f"size must be at least 8 pixels, got {self.size}")
        import numpy as np  # here, not at the top: the command line's parser imports this module

        LeditsRequest(
            image=np.zeros((self.size, self.size, 3), np.uint8),
            concepts=[
                Concept(w, False, self.scale, self.threshold, self.warmup) for w in self.concepts or ["_"]
            ],
            steps=self.steps,
            skip=self.skip,
            momentum=self.momentum,
            device=self.device,
        ).validate()
