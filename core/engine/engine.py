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
from noisebrush.core.engine.plan import default_refine_strength, live_run
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.progress import Progress, ProgressCallback, StopCheck, stop_checker
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.engine.sdedit import run_sdedit
from noisebrush.core.engine.sources import (
    check_steps,
    model_concept_scale,
    model_settings,
    resolve_model,
    schedule_steps,
)
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
                return run_sdedit(prior, run, callback, check, refine_fits, tile)

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
            return run_sdedit(prior, refine, report if callback else None, check, True, tile)[0]
        finally:
            prior.set_low_memory(low_memory)


def _load(path: Path, device: torch.device, dtype: torch.dtype) -> Prior:
    if path.is_file():
        from noisebrush.core.engine.checkpoints import load_single_file

        return load_single_file(path, device, dtype)
    return load_prior(path, device, dtype)
