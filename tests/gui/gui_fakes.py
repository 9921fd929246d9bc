"""A small stand-in engine with the real engine's interface, for GUI tests that need no model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest

MODEL_INDEX = Path(__file__).resolve().parents[2] / "resources" / "models" / "default" / "model_index.json"
needs_bundled_model = pytest.mark.skipif(
    not MODEL_INDEX.exists(), reason=f"the bundled prior is not installed ({MODEL_INDEX} is absent)"
)


class FakeEngine:
    """Inverts the colours inside the mask, step by step, calling back like the real engine."""

    def __init__(self, steps: int = 8, step_s: float = 0.01) -> None:
        self.steps, self.step_s = steps, step_s
        self.calls: list[object] = []
        self.started = threading.Event()
        self.gate: threading.Event | None = None  # set by a test to hold the run until released

    def vocabulary(self, model: str) -> list[str] | None:
        return ["cat", "dog", "hat"]

    def _run(self, image: np.ndarray, mask: np.ndarray | None, seed: int, callback) -> np.ndarray:
        h, w = image.shape[:2]
        out = image.copy()
        m = np.ones((h, w), bool) if mask is None else mask > 0
        shift = seed % 7
        out[..., :3][m] = 255 - image[..., :3][m] - shift
        if out.shape[2] == 4:
            out[..., 3][m] = 255
        self.started.set()
        for i in range(1, self.steps + 1):
            if self.gate is not None:
                self.gate.wait(10)
            time.sleep(self.step_s)
            if callback is not None:
                callback(Progress(i, self.steps, 0, (0, 0, w, h), "denoise", lambda: out[..., :3].copy()))
        return out

    def sdedit(self, req: SDEditRequest, callback=None, should_stop=None) -> list[np.ndarray]:
        req.validate()
        self.calls.append(req)
        return [self._run(req.guide, req.mask, req.seed + v, callback) for v in range(req.variations)]

    def ledits(self, req: LeditsRequest, callback=None, should_stop=None) -> np.ndarray:
        req.validate()
        self.calls.append(req)
        return self._run(req.image, req.mask, int(sum(c.scale for c in req.concepts)), callback)
