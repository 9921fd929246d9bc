"""Sampler steps as Progress reports, for SDEdit and LEDITS alike: one step numbering across every stage of
a run, and a preview rendered only when the caller asks for it (from the x0 prediction, pasted over the
input where the mask keeps it, upscaled to the full box when a stage ran smaller)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from noisebrush.core.engine.masks import Box, mix
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.progress import Progress, ProgressCallback
from noisebrush.core.engine.samplers import Step
from noisebrush.core.engine.tensors import resized, to_uint8


def step_reporter(
    prior: Prior,
    callback: ProgressCallback,
    under: np.ndarray,
    mask: np.ndarray | None,
    box: Box,
    size: tuple[int, int],
    stage: str = "denoise",
    offset: int = 0,
    total: int | None = None,
    full: np.ndarray | None = None,
    full_mask: np.ndarray | None = None,
) -> Callable[[Step], None]:
    """A sampler callback that reports each step of a stage working at `size` (h, w) on the crop `under`.

    `offset` and `total` number the steps over the whole run; `full` (and `full_mask`) are the full-size crop
    a smaller stage's preview is upscaled onto.
    """
    h, w = size

    def report(step: Step) -> None:
        x0 = step.x0[:1]

        def render() -> np.ndarray:
            rgb = to_uint8(prior.preview_rgb(x0))[0][:h, :w]
            if full is not None:
                rgb = resized(rgb, full.shape[:2], "bicubic")
                return rgb if full_mask is None else mix(full, rgb, full_mask)
            return rgb if mask is None else mix(under, rgb, mask)

        all_steps = step.total if total is None else total
        callback(Progress(offset + step.index, all_steps, 0, box.as_tuple(), stage, render))

    return report
