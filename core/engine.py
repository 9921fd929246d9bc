"""The engine: turns a request into images, with the right device, a prior cache and per-step progress."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .errors import BadInput
from .images import flatten
from .ledits import InversionCache, ledits
from .masks import Box, composite, feather, model_mask, pad_to_multiple, paste, work_box
from .models import model_concept_scale, model_settings, resolve_model
from .priors import Prior, compile_prior, load_prior, to_uint8
from .progress import Progress, ProgressCallback
from .requests import LeditsRequest, SDEditRequest
from .samplers import Step, sdedit_ve, sdedit_vp, ve_sigmas


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

    def __init__(self, max_priors: int = 1, compile: bool = False) -> None:
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
    def sdedit(self, req: SDEditRequest, callback: ProgressCallback | None = None) -> list[np.ndarray]:
        """SDEdit (Meng et al. 2022): one output per variation, each the guide's size, seeds seed, seed+1, ..."""
        req.validate()
        if req.strength == 0.0:
            return [req.guide.copy() for _ in range(req.variations)]  # t0 = 0: nothing is noised
        if req.mask is not None and not float(req.mask.max()) > 0.0:  # max: no canvas-sized temporary
            return [req.guide.copy() for _ in range(req.variations)]  # nothing may change
        with self._lock:
            prior = self.prior(req.model, req.device)
            return _sdedit(prior, req, callback)

    # -- LEDITS --------------------------------------------------------------------------------
    def ledits(self, req: LeditsRequest, callback: ProgressCallback | None = None) -> np.ndarray:
        """LEDITS (Tsaban & Passos 2023): edit-friendly DDPM inversion, cached per image, then SEGA."""
        req.validate()
        with self._lock:
            return ledits(self.prior(req.model, req.device), req, self.inversions, callback)


def _load(path: Path, device: torch.device, dtype: torch.dtype) -> Prior:
    if path.is_file():
        from .checkpoints import load_single_file

        return load_single_file(path, device, dtype)
    return load_prior(path, device, dtype)


def _sdedit(prior: Prior, req: SDEditRequest, callback: ProgressCallback | None) -> list[np.ndarray]:
    box = work_box(req.mask, req.guide.shape[:2], req.context, prior.multiple)
    # Only the crop is converted: a big canvas never becomes a float array (transparent paint sits on white).
    crop = flatten(req.guide[box.slices])
    prior.set_low_memory(req.low_memory)
    mask_crop = None if req.mask is None else req.mask[box.slices].astype(np.float32)
    steps = req.steps or prior.default_steps
    guidance = prior.default_guidance if req.guidance is None else req.guidance
    gens = [torch.Generator("cpu").manual_seed(req.seed + i) for i in range(req.variations)]

    pixels = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(prior.device)
    pixels, (h, w) = pad_to_multiple(pixels, prior.multiple)
    size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
    cond = prior.condition(req.prompt, req.negative_prompt, guidance, req.variations, size)
    keep = prior.encode(pixels, gens)
    space_mask = (
        None
        if mask_crop is None
        else model_mask(mask_crop, size, prior.vae_factor).to(prior.device, prior.dtype)
    )

    def denoise(x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return prior.predict(x, t, cond)

    report = None if callback is None else _reporter(prior, callback, crop, mask_crop, box, (h, w))
    with torch.inference_mode():
        if prior.is_ve:
            cfg = prior.scheduler_config
            sigmas = ve_sigmas(
                cfg["sigma_min"], cfg["sigma_max"], req.strength, steps, cfg.get("sampling_eps", 1e-5)
            )
            x = sdedit_ve(denoise, keep, sigmas, gens, req.repeats, space_mask, report)
        else:
            x = sdedit_vp(
                denoise,
                keep,
                prior.new_scheduler(),
                req.strength,
                steps,
                gens,
                req.repeats,
                space_mask,
                report,
            )
        images = to_uint8(_decode_rows(prior, x)[:, :, :h, :w])
    return [_paste(req, box, img, mask_crop) for img in images]


def _decode_rows(prior: Prior, x: torch.Tensor) -> torch.Tensor:
    # One row at a time keeps the VAE's peak memory at a single image.
    return torch.cat([prior.decode(x[i : i + 1]) for i in range(x.shape[0])])


def _paste(req: SDEditRequest, box: Box, generated: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Put a generated crop back; outside the (feathered) mask the guide's bytes are untouched."""
    if mask is None:
        return generated  # the whole image was regenerated: an opaque RGB result
    out = req.guide.copy()
    paste(out[box.slices], generated, feather(mask, req.feather))
    return out


def _reporter(
    prior: Prior,
    callback: ProgressCallback,
    crop: np.ndarray,
    mask: np.ndarray | None,
    box: Box,
    size: tuple[int, int],
) -> Callable[[Step], None]:
    h, w = size

    def report(step: Step) -> None:
        x0 = step.x0[:1]

        def render() -> np.ndarray:
            rgb = to_uint8(prior.preview_rgb(x0))[0][:h, :w]
            return rgb if mask is None else composite(crop, rgb, mask)

        callback(Progress(step.index, step.total, 0, box.as_tuple(), "denoise", render))

    return report
