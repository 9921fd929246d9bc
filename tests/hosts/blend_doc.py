"""A Studio document with one layer per blend mode, for the real-host .ora tests.

Each mode gets its own column of the canvas over an opaque noise background, so the host's flattened
image can be compared with the Studio's composite mode by mode: a column holds that mode's result only.
"""

from __future__ import annotations

import numpy as np

from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import BLEND_MODES, NORMAL, composite

MODES = [op for op in BLEND_MODES if op != NORMAL]  # svg:multiply, svg:screen, ...
COLUMN, BLEND_H = 10, 24
BLEND_W = COLUMN * len(MODES)


def blend_layers() -> list[Layer]:
    """An opaque noise background (every channel value shows up) and, bottom to top, one translucent
    noise layer per mode in its own column, at 80 % opacity."""
    rng = np.random.default_rng(20)
    background = rng.integers(0, 256, (BLEND_H, BLEND_W, 4), dtype=np.uint8)
    background[..., 3] = 255
    layers = [Layer("Background", background)]
    for i, op in enumerate(MODES):
        paint = rng.integers(0, 256, (BLEND_H, COLUMN, 4), dtype=np.uint8)
        paint[: BLEND_H // 2, :, 3] = 255  # the top half opaque: the blend function alone
        layers.append(Layer(op.removeprefix("svg:"), paint, i * COLUMN, 0, 0.8, blend=op))
    return layers


def studio_composite(layers: list[Layer]) -> np.ndarray:
    """What the Studio shows and writes as mergedimage.png."""
    return composite(layers, (0, 0, BLEND_W, BLEND_H))


def worst_by_mode(flat: np.ndarray, want: np.ndarray) -> dict[str, int]:
    """Largest difference in any colour channel (0..255) of each mode's column."""
    diff = np.abs(flat[..., :3].astype(int) - want[..., :3].astype(int))
    return {op: int(diff[:, i * COLUMN : (i + 1) * COLUMN].max()) for i, op in enumerate(MODES)}
