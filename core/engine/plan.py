"""The resolution plan of an SDEdit run: compose at the prior's own scale, refine at full size.

A prior repeats the structure of the images it learned when it regenerates a much larger one (stacked horizons
from the bundled 64 px prior at 256 px, doubled subjects from Stable Diffusion 1.x at 1024; REFERENCE 8). So a
region well above the prior's native size runs as two real SDEdits (A1111's "hires fix"): stage 1 ("compose")
on the area-downscaled guide at the native scale and the request's strength, stage 2 ("refine") on the
bicubically upscaled result at full size and a low strength. Read from config files only: no torch import, so
the server's memory check at submit plans the same run the engine will make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from noisebrush.core.errors import BadInput

if TYPE_CHECKING:
    from noisebrush.core.engine.requests import SDEditRequest

# A region whose longest side is more than this many times the native size is composed at the native size.
# Below it a prior still holds the layout together; the plan's extra stage would only cost time.
WELL_ABOVE = 1.5
REFINE_STRENGTH = 0.3  # A1111's hires fix works at denoising strengths of about 0.3-0.6 (REFERENCE 8)
SD1_SIZE, SD2_V_SIZE, SDXL_SIZE = 512, 768, 1024


@dataclass(frozen=True)
class Stage:
    """One SDEdit of the plan: its name in progress reports, the (h, w) it works at, its t0, and the most
    schedule steps it takes (None: the request's)."""

    name: str  # "compose", "refine", or "denoise" for a plain single-stage run
    size: tuple[int, int]
    strength: float
    max_steps: int | None = None

    def steps(self, requested: int) -> int:
        return requested if self.max_steps is None else min(requested, self.max_steps)


def native_size(path: Path, settings: dict) -> int:
    """The longest side a prior learned, in pixels: `work_size` of its noisebrush.json, else its family's
    (SDXL 1024, SD 2.x v-prediction 768, other latent models 512, a pixel model its UNet's sample_size);
    0 when nothing says (the plan then keeps a single stage)."""
    if "work_size" in settings:
        return int(settings["work_size"])
    if path.is_file():
        return SD1_SIZE  # a single checkpoint file loads as Stable Diffusion 1.x (core/engine/checkpoints.py)
    index = _json(path / "model_index.json")
    if isinstance(index.get("vae"), list) and index["vae"][0] is not None:
        if isinstance(index.get("text_encoder_2"), list) and index["text_encoder_2"][0] is not None:
            return SDXL_SIZE
        scheduler = _json(path / "scheduler" / "scheduler_config.json")
        return SD2_V_SIZE if scheduler.get("prediction_type") == "v_prediction" else SD1_SIZE
    sample = _json(path / "unet" / "config.json").get("sample_size")
    if isinstance(sample, list | tuple):
        sample = max(sample)
    return int(sample) if isinstance(sample, int) and sample > 0 else 0


def live_run(req: SDEditRequest) -> SDEditRequest:
    """`req` as a live draft runs it, when it asks to be one (`live`): at the prior's own scale (its UNet's
    sample size, or its family's), where a run costs a fraction of a second, composed there and upscaled,
    never refined at full size; and, unless `steps` is set, on the prior's `live_steps` schedule (the bundled
    prior: 15, half its default, which changes a 64 px result by about 2/255 per pixel, docs/BENCH.md).
    For a model it cannot read it only drops the refine stage: the engine then says what is wrong."""
    if not req.live:
        return req
    from noisebrush.core.engine.sources import model_settings, resolve_model

    try:
        path = resolve_model(req.model)
        settings = model_settings(path)
        work = native_size(path, {}) or None  # the UNet's own size, not the plan's composing size
    except (BadInput, OSError, ValueError):
        return replace(req, refine_strength=0.0)
    steps = req.steps if req.steps is not None else settings.get("live_steps")
    return replace(req, work_size=work, steps=steps, refine_strength=0.0)


def default_refine_strength(settings: dict) -> float:
    return float(settings.get("refine_strength", REFINE_STRENGTH))


def stages(
    region: tuple[int, int],
    strength: float,
    native: int,
    work_size: int | None,
    refine_strength: float | None,
    settings: dict,
) -> list[Stage]:
    """The SDEdits a run of `region` (h, w) makes. `work_size` None: the prior's `native` size, 0: one stage
    at full size; `refine_strength` None: the prior's default, 0: no refine stage (the upscaled composition)."""
    work = native if work_size is None else work_size
    h, w = region
    if not work or max(h, w) <= WELL_ABOVE * work:
        return [Stage("denoise", region, strength)]
    scale = work / max(h, w)
    small = (max(8, round(h * scale)), max(8, round(w * scale)))
    refine = default_refine_strength(settings) if refine_strength is None else refine_strength
    plan = [Stage("compose", small, strength)]
    if refine > 0:
        # A prior's `refine_steps` bounds the refine stage's schedule: at a low t0 a coarser schedule changes
        # little (the bundled prior: 3 UNet calls at full size instead of 6 differ by about 1/255 per pixel
        # on the README's guide; docs/PRIOR.md), and the refine stage is where the full-size calls are.
        plan.append(Stage("refine", region, refine, settings.get("refine_steps")))
    return plan


def _json(path: Path) -> dict:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return {}
