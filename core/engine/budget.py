"""Peak memory of one run, estimated before it starts, and the budget that refuses a run that would not fit.

A run's peak is the process's base (Python, torch, the weights) plus feature maps that grow with the pixels the
model works on: the denoiser's at its working resolution for every row of its batch (variations, doubled by
classifier-free guidance), the VAE decoder's at full resolution for one row (rows are decoded one at a time),
and the canvas-sized bookkeeping around sampling (guide, mask, feather, composite). Feature maps scale with the
channels of the first block, the widest map at the highest resolution, so one coefficient per byte of those
channels serves every model of a kind; it was fitted to the peak RSS of real runs of the bundled prior on
the CPU (docs/BENCH.md, "Memory estimate"). Everything is read from the model's config files: no weights load
and no torch import, so the server refuses an oversized job at submit in milliseconds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput

DEFAULT_SHARE = 0.5  # of the memory available at start-up
# Fitted to the bundled prior's peak RSS on the CPU in float32 (run growth, full-mask SDEdit): 128, 256, 512
# and 768 px grew 69, 232, 552 and 1189 MB with one row, 256 px 310 MB with two (docs/BENCH.md, "Memory
# estimate"). Growth per pixel rises with size (1.6 KB between 256 and 512, 1.9 KB between 512 and 768; the
# issue saw 2.3 GB at 1024), so the fit follows the large sizes, where refusals happen, and leans high.
BYTES_PER_PIXEL_CHANNEL = 50.0  # per pixel per channel of the first block, per batch row
CANVAS_BYTES_PER_PIXEL = 600.0  # per pixel whatever the rows: the model-space guide, noise, mask and result
RUNTIME_BYTES = 500 * 2**20  # Python, torch and the server before any weights
VAE_TILE_PIXELS = 512 * 512  # diffusers' tiled VAE decodes tiles of its sample size (512 for SD 1.x)
MIN_TILE = 128  # pixels: smaller MultiDiffusion windows spend most of their cells on overlap
# A tiled run (core/engine/tiles.py) keeps only the sampler's canvas-sized tensors besides one window's maps:
# a 1024x1024 full edit of the bundled prior in 256 px windows grew 304 MB over a 64 px run, about 190 bytes
# per pixel after the window's own maps (docs/eval-canvas.md); the estimate leans high.
TILED_CANVAS_BYTES_PER_PIXEL = 300.0
# A single checkpoint file carries no config to read: assume the Stable Diffusion 1.x layout.
_SD_SHAPE = {"unet_channels": 320, "unet_levels": 4, "vae_channels": 128, "vae_factor": 8}


def available_bytes() -> int:
    """MemAvailable of /proc/meminfo (what can be used without swapping); physical memory elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_budget() -> int:
    """The budget when none is set: a share of the memory available now."""
    return int(DEFAULT_SHARE * available_bytes())


def parse_size(text: str) -> int:
    """`6G`, `6.5GB`, `800M`, `6GiB` or plain bytes to bytes (G = 10^9, GiB = 2^30); 0 turns the budget off."""
    s = text.strip().upper().removesuffix("B")
    base = 1024 if s.endswith("I") else 1000
    s = s.removesuffix("I")
    power = "KMGT".find(s[-1:]) + 1 if s[-1:] and s[-1:] in "KMGT" else 0
    try:
        value = float(s[: len(s) - (1 if power else 0)])
    except ValueError:
        raise BadInput(
            f"memory budget {text[:40]!r} is not a size; use e.g. 6G, 800M or 0 for no limit"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"memory budget must be a size of 0 or more, e.g. 6G, got {text[:40]!r}")
    return int(value * base**power)


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


@dataclass(frozen=True)
class Footprint:
    """What a model costs in memory, read from its config files."""

    unet_channels: int  # channels of the denoiser's first block
    vae_channels: int  # channels of the VAE decoder's full-resolution block; 0 for pixel-space models
    vae_factor: int  # pixels per model cell along a side (1 for pixel-space models)
    multiple: int  # pixel sizes are padded to this
    weights: int  # bytes of the weight files
    takes_text: bool
    default_guidance: float

    def peak(self, h: int, w: int, rows: int, tiled: bool = False, tile: int = 0) -> int:
        """Estimated peak RSS of a run working on an h x w region with `rows` denoiser rows; `tiled`: the VAE
        decodes in tiles (low_memory), so its maps stop growing past one tile; `tile`: the denoiser runs in
        MultiDiffusion windows of this side in pixels (core/engine/tiles.py; the VAE is then tiled too)."""
        hp, wp = -(-h // self.multiple) * self.multiple, -(-w // self.multiple) * self.multiple
        cells = (min(tile, hp) * min(tile, wp) if tile else hp * wp) / self.vae_factor**2
        unet = BYTES_PER_PIXEL_CHANNEL * self.unet_channels * cells * rows
        tiled = tiled or bool(tile)
        vae_pixels = min(hp * wp, VAE_TILE_PIXELS) if tiled else hp * wp
        vae = BYTES_PER_PIXEL_CHANNEL * self.vae_channels * vae_pixels
        canvas = (TILED_CANVAS_BYTES_PER_PIXEL if tile else CANVAS_BYTES_PER_PIXEL) * hp * wp
        return int(RUNTIME_BYTES + self.weights + unet + vae + canvas)

    def largest_side(self, budget: int, rows: int) -> int:
        """The side of the largest square region that fits `budget`, a multiple of the model's multiple."""
        per_pixel = (
            BYTES_PER_PIXEL_CHANNEL * (self.unet_channels * rows / self.vae_factor**2 + self.vae_channels)
            + CANVAS_BYTES_PER_PIXEL
        )
        room = budget - RUNTIME_BYTES - self.weights
        if room <= 0:
            return 0
        return int(math.sqrt(room / per_pixel)) // self.multiple * self.multiple

    def smallest_tile(self) -> int:
        """The smallest MultiDiffusion window in pixels: MIN_TILE, at least two of the model's size multiples."""
        return max(MIN_TILE, 2 * self.multiple) // self.multiple * self.multiple

    def largest_tile(self, h: int, w: int, budget: int, rows: int) -> int:
        """The side of the largest window (a multiple of the model's multiple) with which a run on an h x w
        region fits `budget`; 0 when not even the smallest does."""
        lo, hi = self.smallest_tile(), max(h, w) // self.multiple * self.multiple
        if hi < lo or self.peak(h, w, rows, tile=lo) > budget:
            return 0
        while hi > lo:  # peak grows with the tile: bisect on multiples
            mid = (lo + hi + self.multiple) // (2 * self.multiple) * self.multiple
            lo, hi = (mid, hi) if self.peak(h, w, rows, tile=mid) <= budget else (lo, mid - self.multiple)
        return lo

    def largest_tiled_side(self, budget: int, rows: int) -> int:
        """The side of the largest square region a tiled run fits in `budget` (its smallest windows)."""
        tile = self.smallest_tile()
        vae_side = -(-math.isqrt(VAE_TILE_PIXELS) // self.multiple) * self.multiple
        big = max(tile, vae_side)  # a region where a tiled VAE has reached its peak
        fixed = self.peak(big, big, rows, tile=tile) - TILED_CANVAS_BYTES_PER_PIXEL * big * big
        room = budget - fixed
        if room <= 0:
            return 0
        return int(math.sqrt(room / TILED_CANVAS_BYTES_PER_PIXEL)) // self.multiple * self.multiple


def footprint(path: Path, settings: dict) -> Footprint:
    """The footprint of a model folder or single checkpoint file, without loading it."""
    if path.is_file():
        shape = dict(_SD_SHAPE)
        text, weights = True, path.stat().st_size
    else:
        index = _json(path / "model_index.json")
        unet = _json(path / "unet" / "config.json")
        vae = _json(path / "vae" / "config.json") if (path / "vae" / "config.json").exists() else {}
        unet_blocks = list(unet.get("block_out_channels", [320]))
        vae_blocks = list(vae.get("block_out_channels", []))
        shape = {
            "unet_channels": int(unet_blocks[0]),
            "unet_levels": len(unet_blocks),
            "vae_channels": int(vae_blocks[0]) if vae_blocks else 0,
            "vae_factor": 2 ** (len(vae_blocks) - 1) if vae_blocks else 1,
        }
        text = isinstance(index.get("text_encoder"), list) and index["text_encoder"][0] is not None
        weights = sum(f.stat().st_size for f in path.rglob("*") if f.suffix in (".safetensors", ".bin"))
    vae_factor = shape["vae_factor"]
    default_guidance = float(settings.get("default_guidance", 7.5 if text else 1.0))
    return Footprint(
        unet_channels=shape["unet_channels"],
        vae_channels=shape["vae_channels"],
        vae_factor=vae_factor,
        multiple=vae_factor * 2 ** (shape["unet_levels"] - 1),
        weights=weights,
        takes_text=text,
        default_guidance=default_guidance,
    )


def _json(path: Path) -> dict:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def work_size(req: SDEditRequest | LeditsRequest, fp: Footprint, settings: dict) -> tuple[int, int]:
    """(h, w) of the region the model works on: the mask's box plus context for SDEdit (core/masks.work_box),
    the image or its LEDITS work size for LEDITS."""
    if isinstance(req, SDEditRequest):
        from noisebrush.core.engine.masks import work_box

        box = work_box(req.mask, req.guide.shape[:2], req.context, fp.multiple)
        return box.h, box.w
    h, w = req.image.shape[:2]
    work = int(settings.get("ledits_work_size", 0)) if req.work_size is None else req.work_size
    if work and max(h, w) > work:
        scale = work / max(h, w)
        return max(8, round(h * scale)), max(8, round(w * scale))
    return h, w


def rows(req: SDEditRequest | LeditsRequest, fp: Footprint) -> int:
    """Rows of the denoiser's batch: variations, doubled where classifier-free guidance runs; for LEDITS one
    row per concept plus the unconditional (and target) row."""
    if isinstance(req, LeditsRequest):
        return 1 + bool(req.target_prompt) + len(req.concepts)
    guidance = fp.default_guidance if req.guidance is None else req.guidance
    cfg = fp.takes_text and guidance > 1.0 and bool(req.prompt or req.negative_prompt)
    return req.variations * (2 if cfg else 1)


def sdedit_needs(req: SDEditRequest, fp: Footprint, path: Path, settings: dict) -> tuple[int, int | None]:
    """Peak bytes of the SDEdit plan the engine will run (core/engine/plan.py): (without its refine stage, with it);
    the second is None when the plan has no refine stage. The refine stage works on the whole region, so it
    is the peak; the composition alone costs its own small run plus the region's bookkeeping at full size."""
    from noisebrush.core.engine.plan import native_size, stages

    h, w = work_size(req, fp, settings)
    n = rows(req, fp)
    plan = stages(
        (h, w), req.strength, native_size(path, settings), req.work_size, req.refine_strength, settings
    )
    # A full-size stage over the budget runs in MultiDiffusion windows (tile_side): its least need is that.
    full = min(fp.peak(h, w, n, tiled=req.low_memory), fp.peak(h, w, n, tile=fp.smallest_tile()))
    if plan[0].name == "denoise":
        return full, None
    sh, sw = plan[0].size
    # the composition keeps only a tiled run's kind of canvas-sized data (guide, mask, upscaled result)
    compose = fp.peak(sh, sw, n, tiled=req.low_memory) + int(TILED_CANVAS_BYTES_PER_PIXEL * h * w)
    return compose, (max(full, compose) if len(plan) > 1 else None)


def refine_fits(req: SDEditRequest, budget: int | None) -> bool:
    """Whether the plan's full-size refine stage fits `budget` (True without one, or without a limit)."""
    if not budget or req.device.startswith("cuda"):
        return True
    from noisebrush.core.engine.sources import model_settings, resolve_model

    try:
        path = resolve_model(req.model)
        settings = model_settings(path)
        fp = footprint(path, settings)
    except (BadInput, OSError, ValueError):
        return True
    _, refine = sdedit_needs(req, fp, path, settings)
    return refine is None or refine <= budget


def tile_side(req: SDEditRequest, budget: int | None) -> int:
    """The side in pixels of the MultiDiffusion windows the full-size stage runs in to fit `budget`
    (core/engine/tiles.py); 0 when it fits whole (or without a limit, or on a GPU, which this does not size)."""
    if not budget or req.device.startswith("cuda"):
        return 0
    from noisebrush.core.engine.sources import model_settings, resolve_model

    try:
        path = resolve_model(req.model)
        settings = model_settings(path)
        fp = footprint(path, settings)
    except (BadInput, OSError, ValueError):
        return 0
    h, w = work_size(req, fp, settings)
    n = rows(req, fp)
    if fp.peak(h, w, n, tiled=req.low_memory) <= budget:
        return 0
    return fp.largest_tile(h, w, budget, n)


def check(req: SDEditRequest | LeditsRequest, budget: int | None) -> None:
    """Refuse a run whose estimated peak exceeds `budget` bytes (None or 0: no limit), naming what fits.

    Models that cannot be read here are left to the engine, which says what is wrong with them."""
    if not budget or req.device.startswith("cuda"):
        return  # on a GPU the feature maps live in its memory, which this estimate does not cover
    from noisebrush.core.engine.sources import model_settings, resolve_model

    try:
        path = resolve_model(req.model)
        settings = model_settings(path)
        fp = footprint(path, settings)
    except (BadInput, OSError, ValueError):
        return
    h, w = work_size(req, fp, settings)
    n = rows(req, fp)
    if isinstance(req, SDEditRequest):
        need, _ = sdedit_needs(req, fp, path, settings)
    else:
        need = fp.peak(h, w, n)
    if need <= budget:
        return
    side = fp.largest_tiled_side(budget, n) if isinstance(req, SDEditRequest) else fp.largest_side(budget, n)
    what = "an edit" if isinstance(req, SDEditRequest) else "a LEDITS edit"
    fits = (
        f"this model can take up to {side}x{side} here, or select a smaller region"
        if side
        else "this model does not fit it at any size"
    )
    batch = f" with {n} rows (variations x guidance)" if n > 1 else ""
    raise BadInput(
        f"{what} of {w}x{h}{batch} needs about {gigabytes(need)}; the memory budget is "
        f"{gigabytes(budget)}; {fits}"
    )


MEMORY_BUDGET_HELP = (
    "largest peak memory one job may need, e.g. 6G or 800M (0: no limit); a bigger job is refused with the "
    "size this model can take (default: half the memory available at start-up)"
)


def budget_arg(text: str) -> int:
    """`parse_size` for argparse: a bad size is a usage error that names what is allowed."""
    import argparse

    try:
        return parse_size(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
