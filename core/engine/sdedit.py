"""One SDEdit run on a loaded prior: the plan's stages (compose at the prior's scale, refine at full size, or
one denoise), each a real SDEdit of the crop around the selection, then the crop pasted back. `Engine.sdedit`
checks the request, holds the prior and calls this; so does the LEDITS refine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from noisebrush.core.engine.images import flatten
from noisebrush.core.engine.masks import Box, feather, mix, model_mask, pad_to_multiple, paste, work_box
from noisebrush.core.engine.plan import Stage, stages
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.progress import Progress, ProgressCallback
from noisebrush.core.engine.reporting import step_reporter
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.samplers import sdedit_ve, sdedit_vp, start_index, ve_sigmas
from noisebrush.core.engine.tensors import resized, resized_mask, to_uint8, to_unit
from noisebrush.core.engine.tiles import tiled


def run_sdedit(
    prior: Prior,
    req: SDEditRequest,
    callback: ProgressCallback | None,
    check: Callable[[], None],
    refine_fits: bool = True,
    tile: int = 0,
) -> list[np.ndarray]:
    box = work_box(req.mask, req.guide.shape[:2], req.context, prior.multiple)
    # Only the crop is converted: a big canvas never becomes a float array (transparent paint sits on white).
    crop = flatten(req.guide[box.slices])
    tile = tile if tile < max(box.h, box.w) else 0  # one window over the region is no tiles, bit for bit
    prior.set_low_memory(req.low_memory or bool(tile) and prior.is_latent)  # with tiles, a tiled VAE too
    mask_crop = None if req.mask is None else req.mask[box.slices].astype(np.float32)
    steps = req.steps or prior.default_steps
    plan = stages(
        (box.h, box.w), req.strength, prior.work_size, req.work_size, req.refine_strength, prior.settings
    )
    skipped = not refine_fits and len(plan) > 1
    if skipped:  # the refine stage would pass the memory budget: the upscaled composition is the result
        plan = plan[:1]
    # The composition runs every variation in one batch; the refine stage one variation at a time (on the
    # CPU a batch saves little, and variation i then equals seed + i run alone to the last bit).
    counts = [
        _stage_steps(prior, s.strength, s.steps(steps), req.repeats if i == 0 else 1)
        for i, s in enumerate(plan)
    ]
    total = counts[0] + sum(counts[1:]) * req.variations
    run = _Run(prior, req, steps, callback, check, box, total)
    run.tile = tile
    seeds = [req.seed + i for i in range(req.variations)]
    if plan[0].name == "denoise":
        images = run.stage(crop, mask_crop, plan[0], req.repeats, 0, seeds)
    else:
        small_crop = resized(crop, plan[0].size, "area")
        small_mask = None if mask_crop is None else resized_mask(mask_crop, plan[0].size)
        composed = run.stage(small_crop, small_mask, plan[0], req.repeats, 0, seeds, crop, mask_crop)
        # Outside the selection the refine stage starts from the guide's own full-resolution pixels.
        images = [_upscaled(img, crop, mask_crop, check) for img in composed]
        del composed
        if skipped and callback is not None:
            callback(
                Progress(counts[0], counts[0], 0, box.as_tuple(), "refine skipped: over the memory budget")
            )
        if len(plan) > 1:
            images = [
                run.stage(img, mask_crop, plan[1], 1, counts[0] + i * counts[1], [seed])[0]
                for i, (img, seed) in enumerate(zip(images, seeds, strict=True))
            ]
    weight = None if mask_crop is None else feather(mask_crop, req.feather, check)
    return [_paste(req, box, img, weight, check) for img in images]


class _Run:
    """What the stages of one SDEdit run share: the prior, the request's settings and the progress count."""

    def __init__(
        self,
        prior: Prior,
        req: SDEditRequest,
        steps: int,
        callback: ProgressCallback | None,
        check: Callable[[], None],
        box: Box,
        total: int,
    ) -> None:
        self.prior, self.req, self.steps = prior, req, steps
        self.callback, self.check, self.box, self.total = callback, check, box, total
        self.guidance = prior.default_guidance if req.guidance is None else req.guidance
        self.tile = 0

    def stage(
        self,
        guide: np.ndarray,
        mask: np.ndarray | None,
        stage: Stage,
        repeats: int,
        offset: int,
        seeds: list[int],
        full: np.ndarray | None = None,
        full_mask: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """One SDEdit of an RGB uint8 guide, one row per seed; returns uint8 images of the guide's size.
        `full`: the crop a smaller stage stands for, which its previews are shown over."""
        prior, req = self.prior, self.req
        gens = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        pixels = _to_model_pixels(guide, prior)
        h, w = guide.shape[:2]
        size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
        cond = prior.condition(req.prompt, req.negative_prompt, self.guidance, len(seeds), size)
        keep = prior.encode(pixels, gens)
        del pixels
        space_mask = (
            None if mask is None else model_mask(mask, size, prior.vae_factor).to(prior.device, prior.dtype)
        )

        def predict(x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
            return prior.predict(x, t, cond)

        cells = prior.vae_factor  # MultiDiffusion windows when the budget asks (core/engine/tiles.py)
        region = (int(keep.shape[-2]), int(keep.shape[-1]))
        denoise = tiled(predict, region, self.tile // cells, prior.multiple // cells)

        report = None
        if self.callback is not None:
            report = step_reporter(
                prior,
                self.callback,
                guide,
                mask,
                self.box,
                (h, w),
                stage.name,
                offset,
                self.total,
                full,
                full_mask,
            )
        with torch.inference_mode():
            if prior.is_ve:
                cfg = prior.scheduler_config
                sigmas = ve_sigmas(
                    cfg["sigma_min"],
                    cfg["sigma_max"],
                    stage.strength,
                    stage.steps(self.steps),
                    cfg.get("sampling_eps", 1e-5),
                )
                x = sdedit_ve(denoise, keep, sigmas, gens, repeats, space_mask, report)
            else:
                x = sdedit_vp(
                    denoise,
                    keep,
                    prior.new_scheduler(),
                    stage.strength,
                    stage.steps(self.steps),
                    gens,
                    repeats,
                    space_mask,
                    report,
                )
            images = _decode_rows(prior, x, (h, w), self.check)
            del x, keep
        return images


def _to_model_pixels(rgb: np.ndarray, prior: Prior) -> torch.Tensor:
    """uint8 RGB (H, W, 3) to (1, 3, H', W') in [-1, 1] on the prior's device, padded to its size multiple."""
    return pad_to_multiple(to_unit(rgb, prior.device), prior.multiple)[0]


def _stage_steps(prior: Prior, strength: float, steps: int, repeats: int) -> int:
    """Steps a sampler call will report, known before it runs, so progress counts across both stages."""
    if prior.is_ve:
        cfg = prior.scheduler_config
        return (
            len(ve_sigmas(cfg["sigma_min"], cfg["sigma_max"], strength, steps, cfg.get("sampling_eps", 1e-5)))
            - 1
        ) * repeats
    scheduler = prior.new_scheduler()
    scheduler.set_timesteps(steps)
    begin = start_index(steps, strength) * getattr(scheduler, "order", 1)
    return len(scheduler.timesteps[begin:]) * repeats


def _upscaled(
    small: np.ndarray, crop: np.ndarray, mask: np.ndarray | None, check: Callable[[], None]
) -> np.ndarray:
    up = resized(small, crop.shape[:2], "bicubic")
    return up if mask is None else mix(crop, up, mask, check)


def _decode_rows(
    prior: Prior, x: torch.Tensor, size: tuple[int, int], check: Callable[[], None]
) -> list[np.ndarray]:
    """Each row to uint8 pixels as soon as it is decoded: the VAE's peak is one image and no float batch of
    the whole canvas is kept."""
    h, w = size
    out = []
    for i in range(x.shape[0]):
        check()
        out.append(to_uint8(prior.decode(x[i : i + 1])[:, :, :h, :w])[0])
    return out


def _paste(
    req: SDEditRequest, box: Box, generated: np.ndarray, weight: np.ndarray | None, check: Callable[[], None]
) -> np.ndarray:
    """Put a generated crop back; outside the (feathered) mask the guide's bytes are untouched."""
    if weight is None:
        return generated  # the whole image was regenerated: an opaque RGB result
    out = req.guide.copy()
    paste(out[box.slices], generated, weight, check)
    return out
