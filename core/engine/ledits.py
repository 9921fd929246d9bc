"""LEDITS (Tsaban & Passos 2023, arXiv 2307.00522) on a Prior: invert once, edit many times.

The inversion (core/engine/inversion.py) depends only on the image, the model and the inversion settings, so it is
cached: editing the same image again with other concepts, scales, target prompt or mask skips straight to
the SEGA regeneration (core/engine/sega.py). The whole image is inverted (not a crop around the mask), so one
inversion serves every mask.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace

import numpy as np
import torch

from noisebrush.core.engine.images import flatten
from noisebrush.core.engine.inversion import Inversion, edit_schedule, invert
from noisebrush.core.engine.masks import Box, feather, mix, model_mask, pad_to_multiple, paste
from noisebrush.core.engine.priors import Conditioning, Prior
from noisebrush.core.engine.progress import Progress, ProgressCallback
from noisebrush.core.engine.reporting import step_reporter
from noisebrush.core.engine.requests import LeditsRequest
from noisebrush.core.engine.samplers import Step
from noisebrush.core.engine.sega import retraced_steps, sega
from noisebrush.core.engine.tensors import resize, resized_mask, to_uint8, to_unit
from noisebrush.core.errors import BadInput

DEFAULT_CACHE_BYTES = 1 << 30  # about 40 SD 512x512 inversions (50 steps) or a dozen 256x256 pixel ones
MAX_DEFAULT_STEPS = 100  # the LEDITS demo's schedule; a pixel prior's own default may be its 1000 train steps


class InversionCache:
    """Inversions by key, least recently used evicted first once their bytes exceed `max_bytes`."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, Inversion] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(inv.nbytes for inv in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Inversion | None:
        inv = self._items.get(key)
        if inv is not None:
            self._items.move_to_end(key)
        return inv

    def put(self, key: Hashable, inv: Inversion) -> None:
        if inv.nbytes > self.max_bytes:
            return  # larger than the whole budget: keeping it would evict everything else for nothing
        self._items[key] = inv
        self._items.move_to_end(key)
        while self.nbytes > self.max_bytes:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def inversion_key(prior: Prior, rgb: np.ndarray, req: LeditsRequest, steps: int) -> Hashable:
    """What an inversion depends on: the pixels, the model (and where it runs) and the inversion settings."""
    digest = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
    source = (req.source_prompt, req.source_guidance if req.source_prompt else None)
    return (
        digest,
        rgb.shape,
        str(prior.path),
        str(prior.device),
        str(prior.dtype),
        steps,
        req.skip,
        source,
        req.seed,
    )


def check_prior(prior: Prior, req: LeditsRequest) -> None:
    """What this prior can do for this request; the message says what is allowed."""
    if prior.is_ve:
        raise BadInput(
            "LEDITS needs a VP (DDPM-type) model; this one is a VE score model (use `edit` with it)"
        )
    texts = [c.text for c in req.concepts] + [req.source_prompt, req.target_prompt]
    if not prior.takes_text and any(t.strip() for t in texts):
        raise BadInput(
            "this model takes no text; concepts and source/target prompts need a text-conditioned model"
        )
    for c in req.concepts:
        prior.check_words(c.text, f"concept {c.text!r}")
    prior.check_words(req.source_prompt, "source prompt")
    prior.check_words(req.target_prompt, "target prompt")


def ledits(
    prior: Prior,
    req: LeditsRequest,
    cache: InversionCache | None = None,
    callback: ProgressCallback | None = None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Run one LEDITS request: (cached) edit-friendly inversion, SEGA regeneration, pixel-space mix.

    `check()` raises Cancelled to stop the run; it is called between bands of the final mix (the
    engine also calls it before every model block)."""
    check_prior(prior, req)
    scale = prior.default_concept_scale  # for concepts that leave theirs unset
    req = replace(req, concepts=[c if c.scale is not None else replace(c, scale=scale) for c in req.concepts])
    if req.mask is not None and not (req.mask > 0).any():
        return req.image.copy()  # nothing may change
    if carried_up(prior, req):
        return _carried_up(prior, req, work_size(prior, req), cache, callback, check)
    return _ledits(prior, req, cache, callback, check)


def _carried_up(
    prior: Prior,
    req: LeditsRequest,
    work: int,
    cache: InversionCache | None,
    callback: ProgressCallback | None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Edit an area-downscaled copy whose longest side is `work`, then add the upscaled change to the full image.

    Unchanged parts keep every full-resolution pixel (the inversion is exact, so no concept means no change),
    and the model sees the image at the scale it knows instead of tiling its small-image structure over it.
    """
    rgb = flatten(req.image)
    h, w = rgb.shape[:2]
    factor = work / max(h, w)
    small_size = (max(8, round(h * factor)), max(8, round(w * factor)))
    full = to_unit(rgb)
    small = to_uint8(resize(full, small_size, "area"))[0]
    edited_from = to_unit(small)  # the change is measured from the copy the model actually saw
    mask = None if req.mask is None else req.mask.astype(np.float32)
    small_mask = None
    if mask is not None:
        small_mask = resized_mask(mask, small_size)
    sub = replace(req, image=small, mask=small_mask, feather=0, work_size=0)

    def carry(edited: np.ndarray) -> np.ndarray:
        return to_uint8(full + resize(to_unit(edited) - edited_from, (h, w), "bicubic"))[0]

    def preview(p: Progress) -> np.ndarray:
        small_preview = p.preview()
        assert small_preview is not None  # _ledits' reports always render
        out = carry(small_preview)
        return out if mask is None else mix(rgb, out, mask)

    def report(p: Progress) -> None:
        assert callback is not None
        callback(replace(p, box=(0, 0, w, h), _render=lambda: preview(p)))

    edited = carry(_ledits(prior, sub, cache, report if callback else None, check))
    if mask is None:
        return edited
    out = req.image.copy()
    paste(out, edited, feather(mask, req.feather, check), check)
    return out


def _ledits(
    prior: Prior,
    req: LeditsRequest,
    cache: InversionCache | None,
    callback: ProgressCallback | None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """One LEDITS run at the image's own size, scales resolved."""
    rgb = flatten(req.image)  # transparent paint sits on white paper
    h, w = rgb.shape[:2]
    pixels = to_unit(rgb, prior.device)
    pixels, _ = pad_to_multiple(pixels, prior.multiple)
    size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
    steps = req.steps or min(prior.default_steps, MAX_DEFAULT_STEPS)
    schedule = edit_schedule(prior.new_scheduler(), steps, req.skip)
    n = len(schedule)
    key = inversion_key(prior, rgb, req, steps)
    inv = None if cache is None else cache.get(key)
    mask = None if req.mask is None else req.mask.astype(np.float32)
    # The unguided prediction is the inversion's own: leading steps with no concept retrace it (core/engine/sega.py).
    matches_inversion = req.target_prompt == req.source_prompt and (
        not req.source_prompt or req.target_guidance == req.source_guidance
    )
    retraced = retraced_steps(n, req.concepts, req.momentum, matches_inversion)
    offset = 0 if inv is not None else n
    total = offset + n - retraced
    box = Box(0, 0, w, h)

    def report(name: str, start: int) -> Callable[[Step], None]:
        assert callback is not None
        return step_reporter(prior, callback, rgb, mask, box, (h, w), name, start, total)

    with torch.inference_mode():
        if inv is None:
            x0 = _encode(prior, pixels)
            sources = ["", req.source_prompt] if req.source_prompt else [""]
            source = _rows(prior, sources, size)

            def denoise_source(x: torch.Tensor, t: int) -> torch.Tensor:
                out = prior.predict(x.to(prior.dtype).repeat(len(sources), 1, 1, 1), t, source)
                if not req.source_prompt:
                    return out
                uncond, text = out.chunk(2)
                return uncond + req.source_guidance * (text - uncond)

            gen = torch.Generator("cpu").manual_seed(req.seed)
            inv = invert(
                denoise_source, x0, schedule, gen, prior.dtype, report("invert", 0) if callback else None
            )
            if cache is not None:
                cache.put(key, inv)

        texts = [""] + ([req.target_prompt] if req.target_prompt else []) + [c.text for c in req.concepts]
        rows = _rows(prior, texts, size)

        def denoise(x: torch.Tensor, t: int, which: list[int]) -> torch.Tensor:
            cond = rows if len(which) == len(texts) else _select(rows, which)
            return prior.predict(x.to(prior.dtype).repeat(len(which), 1, 1, 1), t, cond)

        space_mask = None if mask is None else model_mask(mask, size, prior.vae_factor).to(prior.device)
        x = sega(
            denoise,
            inv,
            req.concepts,
            req.target_guidance if req.target_prompt else None,
            req.momentum,
            req.momentum_beta,
            space_mask,
            req.threshold_over,
            report("denoise", offset - retraced) if callback else None,
            matches_inversion,
        )
        generated = to_uint8(prior.decode(x.to(prior.dtype))[:, :, :h, :w])[0]
    if mask is None:
        return generated  # the whole image was regenerated: an opaque RGB result
    out = req.image.copy()
    paste(out, generated, feather(mask, req.feather, check), check)
    return out


def _rows(prior: Prior, texts: list[str], size: tuple[int, int]) -> Conditioning:
    """One embedding row per text, unguided, for a single batched UNet call."""
    if not prior.takes_text:
        return Conditioning()
    conds = [prior.condition(t, "", 1.0, 1, size) for t in texts]
    embeds = torch.cat([c.embeds for c in conds if c.embeds is not None])
    added = None
    if conds[0].added is not None:
        added = {k: torch.cat([c.added[k] for c in conds if c.added]) for k in conds[0].added}
    return Conditioning(embeds=embeds, added=added)


def _select(rows: Conditioning, which: list[int]) -> Conditioning:
    if rows.embeds is None:
        return rows
    added = None if rows.added is None else {k: v[which] for k, v in rows.added.items()}
    return Conditioning(embeds=rows.embeds[which], added=added)


def _encode(prior: Prior, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels to the model's space; latents are the VAE posterior's mean (its mode), as LEDITS++ takes them."""
    if prior.vae is None:
        return pixels.to(prior.dtype)
    vae_dtype = next(prior.vae.parameters()).dtype
    return prior.latent(prior.vae.encode(pixels.to(vae_dtype)).latent_dist.mean)


# A change below this (per channel, of 1) is the uint8 rounding of the carried-up copy, not an edit.
ROUNDING = 2.5 / 255
CHANGE_GAIN = 8.0  # a change of 1/8 of the range refines at the full t0; smaller ones less (a soft mask)
CHANGE_REACH = 9  # pixels: a refined pixel's neighbours refine too, so an edited edge gets its surroundings


def work_size(prior: Prior, req: LeditsRequest) -> int:
    """The longest side `req` is edited at: the request's, else the model's (0: the full size)."""
    return prior.ledits_work_size if req.work_size is None else req.work_size


def carried_up(prior: Prior, req: LeditsRequest) -> bool:
    """Whether `req` is edited at a smaller work size and carried up to its full size."""
    work = work_size(prior, req)
    return bool(work) and max(req.image.shape[:2]) > work


def change_mask(before: np.ndarray, after: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """A soft mask of what an edit changed, float32 (H, W) in [0, 1]: 0 where nothing changed (and outside
    `mask`), rising with the size of the change, widened by CHANGE_REACH pixels and smoothed."""
    change = to_unit(after[..., :3]) - to_unit(before[..., :3])  # [-1, 1] units: half of it is [0, 1] units
    d = change.abs_().amax(dim=1, keepdim=True) / 2
    d = torch.where(d > ROUNDING, d, torch.zeros_like(d))
    r = CHANGE_REACH
    d = torch.nn.functional.max_pool2d(d, r, 1, r // 2)
    d = torch.nn.functional.avg_pool2d(d, r, 1, r // 2, count_include_pad=False)
    m = (d[0, 0] * CHANGE_GAIN).clamp_(0.0, 1.0).numpy()
    if mask is not None:
        m *= mask > 0  # the refine never reaches what the selection keeps
    return m.astype(np.float32)
