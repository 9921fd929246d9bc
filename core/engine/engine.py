"""The engine: turns a request into images, with the right device, a prior cache and per-step progress."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from noisebrush.core.engine import addons, budget, previews
from noisebrush.core.engine import precision as engine_precision
from noisebrush.core.engine.images import flatten
from noisebrush.core.engine.ledits import InversionCache, carried_up, change_mask, ledits
from noisebrush.core.engine.loading import compile_prior, load_prior
from noisebrush.core.engine.masks import Box, feather, mix, model_mask, pad_to_multiple, paste, work_box
from noisebrush.core.engine.plan import Stage, default_refine_strength, live_run, stages
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.progress import Progress, ProgressCallback, StopCheck, stop_checker
from noisebrush.core.engine.reporting import step_reporter
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.engine.samplers import sdedit_ve, sdedit_vp, start_index, ve_sigmas
from noisebrush.core.engine.sources import (
    check_steps,
    model_concept_scale,
    model_settings,
    resolve_model,
    schedule_steps,
)
from noisebrush.core.engine.tensors import resized, resized_mask, to_uint8, to_unit
from noisebrush.core.engine.tiles import tiled
from noisebrush.core.errors import BadInput


def pick_device(name: str) -> tuple[torch.device, torch.dtype]:
    """`auto` is CUDA in half precision when present, else CPU in float32."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput(f"device {name!r} was asked for but no CUDA device is available; use cpu or auto")
        return torch.device(name), torch.float16
    if name != "cpu":
        raise BadInput(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N")
    return torch.device("cpu"), torch.float32


class Engine:
    """Runs requests one at a time, keeping the most recently used priors loaded."""

    def __init__(
        self,
        max_priors: int = 1,
        compile: bool = False,
        memory_budget: int | None = None,
        tile: int = 0,
        precision: str | None = None,
    ) -> None:
        # auto, float32 or bfloat16 (core/engine/precision.py); None: the NOISEBRUSH_PRECISION environment variable's.
        self.precision = engine_precision.resolve(precision)
        # Bytes a run may peak at (core/engine/budget.py); None: a share of the memory available now; 0: no limit.
        self.memory_budget = budget.default_budget() if memory_budget is None else memory_budget
        self.tile = tile  # MultiDiffusion window side in pixels for every run (0: as the budget needs)
        self._priors: OrderedDict[tuple[str, str, torch.dtype], Prior] = OrderedDict()
        self._max = max_priors
        self._compile = compile  # opt-in torch.compile of the denoiser: slow first run, faster steps after
        self._lock = threading.RLock()
        self.inversions = InversionCache()  # LEDITS inversions, bounded in bytes, least recently used evicted

    # -- priors ------------------------------------------------------------------------------
    def prior(self, model: str, device: str = "auto") -> Prior:
        dev, dtype = pick_device(device)
        path = resolve_model(model)
        key = (str(path), str(dev), dtype)
        with self._lock:
            if key in self._priors:
                self._priors.move_to_end(key)
                return self._priors[key]
            while len(self._priors) >= self._max:
                self._priors.popitem(last=False)
            prior = _load(path, dev, dtype)
            prior.autocast = engine_precision.autocast_dtype(dev, self.precision)
            previews.attach(prior)  # TAESD previews when the models folder has one for this family
            if self._compile:
                compile_prior(prior)
            self._priors[key] = prior
            return prior

    def vocabulary(self, model: str) -> list[str] | None:
        """The prior's closed vocabulary (None: free text), read from its settings without loading it, so an
        app can show the words at start-up without seconds of weight loading competing with its window."""
        vocab = model_settings(resolve_model(model)).get("vocabulary")
        return list(vocab) if vocab else None

    def concept_scale(self, model: str) -> float:
        """The model's SEGA scale for concepts that leave theirs unset; read without loading the weights."""
        return model_concept_scale(model)

    # -- SDEdit --------------------------------------------------------------------------------
    def sdedit(
        self,
        req: SDEditRequest,
        callback: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[np.ndarray]:
        """SDEdit (Meng et al. 2022): one output per variation, each the guide's size, seeds seed, seed+1, ...

        `should_stop()` is asked before every model block and between bands of the work around sampling;
        once it says True the run raises Cancelled within one block's time, whatever the image size.
        """
        req.validate()
        req = live_run(req)
        if req.strength == 0.0:
            return [req.guide.copy() for _ in range(req.variations)]  # t0 = 0: nothing is noised
        if req.mask is not None and not float(req.mask.max()) > 0.0:  # max: no canvas-sized temporary
            return [req.guide.copy() for _ in range(req.variations)]  # nothing may change
        check_steps(req.steps, schedule_steps(resolve_model(req.model)), req.model)
        budget.check(req, self.memory_budget)
        # A plan whose full-size refine stage would pass the budget returns the upscaled composition instead
        # of refusing: the composition is the edit, the refine stage its detail (progress says it was skipped).
        refine_fits = budget.refine_fits(req, self.memory_budget)
        tile = self.tile or budget.tile_side(req, self.memory_budget)
        with self._lock:
            prior = self.prior(req.model, req.device)
            check = stop_checker(should_stop)
            with (
                prior.stop_hooks(check if should_stop is not None else None),
                addons.applied(prior, req) as run,
            ):
                return _sdedit(prior, run, callback, check, refine_fits, tile)

    # -- LEDITS --------------------------------------------------------------------------------
    def ledits(
        self,
        req: LeditsRequest,
        callback: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> np.ndarray:
        """LEDITS (Tsaban & Passos 2023): edit-friendly DDPM inversion, cached per image, then SEGA.

        `should_stop` as for `sdedit`: asked before every model block and inside the final mix."""
        req.validate()
        check_steps(req.steps, schedule_steps(resolve_model(req.model)), req.model)
        budget.check(req, self.memory_budget)
        with self._lock:
            prior = self.prior(req.model, req.device)
            check = stop_checker(should_stop)
            with prior.stop_hooks(check if should_stop is not None else None):
                total = [0]  # LEDITS' step count, which the refine's steps count on from

                def report(p: Progress) -> None:
                    total[0] = p.total
                    assert callback is not None
                    callback(p)

                edited = ledits(prior, req, self.inversions, report if callback else None, check)
                if not carried_up(prior, req):
                    return edited
                return self._refine_change(prior, req, edited, callback, check, total[0])

    def _refine_change(
        self,
        prior: Prior,
        req: LeditsRequest,
        edited: np.ndarray,
        callback: ProgressCallback | None,
        check: Callable[[], None],
        done: int,
    ) -> np.ndarray:
        """A LEDITS edit made at the work size and carried up, refined at full size where it changed the image:
        SDEdit at the refine t0 with the change as a soft mask (differential diffusion), so unchanged pixels
        keep their bytes, and the refined ones get full-size detail instead of the carried-up blur and the
        ghost of an edge the edit moved (docs/LEDITS.md)."""
        strength = (
            default_refine_strength(prior.settings) if req.refine_strength is None else req.refine_strength
        )
        # Compared as the model saw them: transparent paint on white, as LEDITS flattened it.
        mask = change_mask(flatten(req.image), flatten(edited), req.mask) if strength > 0 else None
        if mask is None or not mask.max() > 0:
            return edited
        refine = SDEditRequest(
            guide=edited,
            mask=mask,
            model=req.model,
            strength=strength,
            steps=prior.settings.get("refine_steps"),
            seed=req.seed,
            prompt=req.target_prompt,
            device=req.device,
            feather=0,  # the soft mask is its own seam
            work_size=0,
        )
        try:
            budget.check(refine, self.memory_budget)
        except BadInput:
            if callback is not None:  # the carried-up edit is the result; say why it has no full-size detail
                h, w = edited.shape[:2]
                callback(Progress(done, done, 0, (0, 0, w, h), "refine skipped: over the memory budget"))
            return edited
        tile = self.tile or budget.tile_side(refine, self.memory_budget)
        full = (0, 0, edited.shape[1], edited.shape[0])

        def report(p: Progress) -> None:
            assert callback is not None

            def render() -> np.ndarray:  # the refined region over the whole edit, as LEDITS' previews show
                out = edited[..., :3].copy()
                x, y, w, h = p.box
                region = p.preview()
                if region is not None:
                    out[y : y + h, x : x + w] = region[..., :3]
                return out

            callback(
                replace(p, step=done + p.step, total=done + p.total, box=full, stage="refine", _render=render)
            )

        low_memory = prior.low_memory  # a tiled refine switches it on; LEDITS runs as it was set before
        try:
            return _sdedit(prior, refine, report if callback else None, check, True, tile)[0]
        finally:
            prior.set_low_memory(low_memory)


def _load(path: Path, device: torch.device, dtype: torch.dtype) -> Prior:
    if path.is_file():
        from noisebrush.core.engine.checkpoints import load_single_file

        return load_single_file(path, device, dtype)
    return load_prior(path, device, dtype)


def _sdedit(
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
