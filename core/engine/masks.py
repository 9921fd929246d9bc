"""Selection masks: the crop a run needs, inward feathering and the final pixel-space mix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads on first use: the server sizes a job's work box at submit without it
    import torch


@dataclass(frozen=True)
class Box:
    """A pixel rectangle (x, y, w, h) inside the full image."""

    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def work_box(mask: np.ndarray | None, shape: tuple[int, int], context: int, multiple: int) -> Box:
    """The region a run processes: the mask's bounding box plus `context` pixels, grown to a size multiple.

    Cost then follows the selection, not the canvas (cf. SIGE, Li et al. 2022). Without a mask, or when
    the mask is empty, the whole image is the box.
    """
    h, w = shape
    if mask is None:
        return Box(0, 0, w, h)
    # row and column maxima: O(H + W) memory however big the canvas, unlike nonzero() on the whole mask
    ys = np.flatnonzero(mask.max(axis=1) > 0)
    xs = np.flatnonzero(mask.max(axis=0) > 0)
    if ys.size == 0:
        return Box(0, 0, w, h)
    y0, y1 = max(int(ys[0]) - context, 0), min(int(ys[-1]) + 1 + context, h)
    x0, x1 = max(int(xs[0]) - context, 0), min(int(xs[-1]) + 1 + context, w)
    y0, y1 = _grow(y0, y1, h, multiple)
    x0, x1 = _grow(x0, x1, w, multiple)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _grow(a: int, b: int, limit: int, multiple: int) -> tuple[int, int]:
    """Widen [a, b) to a multiple of `multiple` where the image allows; padding covers the rest."""
    size = -(-(b - a) // multiple) * multiple
    if size >= limit:
        return 0, limit
    extra = size - (b - a)
    a = max(a - extra // 2, 0)
    b = a + size
    if b > limit:
        b, a = limit, limit - size
    return a, b


def feather(mask: np.ndarray, radius: int, check: Callable[[], None] | None = None) -> np.ndarray:
    """Soften the mask's border inwards only: outside the mask stays exactly 0, deep inside stays 1.

    `check` is called between bands of rows or columns (it raises Cancelled to stop a run).
    """
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if radius <= 0:
        return m.copy() if m is mask else m
    # A box blur applied twice is close to a Gaussian; running sums make each pass cost O(1) per pixel
    # whatever the radius (a direct box filter costs the kernel's area per pixel: radius 600 took 23 s).
    blurred = m
    for _ in range(2):
        blurred = _box_rows(blurred, radius, check)
        blurred = _box_rows(blurred.T, radius, check).T
    eroded = np.clip(2.0 * blurred - 1.0, 0.0, 1.0, out=blurred)  # reaches 1 only well inside the selection
    return np.minimum(m, eroded)


_BAND = 256  # rows per band: float64 running sums stay a few MB however wide the canvas


def _box_rows(a: np.ndarray, radius: int, check: Callable[[], None] | None) -> np.ndarray:
    """Mean over a window of 2 * radius + 1 along each row, edges replicated, as a float32 copy."""
    out = np.empty(a.shape, np.float32)
    n = a.shape[1]
    r = min(radius, n)  # padding past a row's length adds only more copies of its edge pixels
    for y in range(0, a.shape[0], _BAND):
        if check is not None:
            check()
        rows = a[y : y + _BAND]
        sums = np.empty((rows.shape[0], n + 2 * r + 1))  # running sums of the edge-padded row, 0 first
        sums[:, 0] = 0.0
        sums[:, 1 : r + 1] = rows[:, :1]
        sums[:, r + 1 : r + 1 + n] = rows
        sums[:, r + 1 + n :] = rows[:, -1:]
        np.cumsum(sums[:, 1:], axis=1, out=sums[:, 1:])
        total = sums[:, 2 * r + 1 :] - sums[:, :n]
        if radius > r:
            total += (radius - r) * (rows[:, :1] + rows[:, -1:])
        np.multiply(total, 1.0 / (2 * radius + 1), out=out[y : y + _BAND], casting="same_kind")
    return out


def mix(
    original: np.ndarray, generated: np.ndarray, weight: np.ndarray, check: Callable[[], None] | None = None
) -> np.ndarray:
    """original * (1 - weight) + generated * weight, in uint8; where weight is 0 the original bytes stay.

    Done in bands of rows, so float temporaries stay a few MB on any canvas and `check` can stop it.
    """
    out = np.empty_like(original)
    for y in range(0, original.shape[0], _BAND):
        if check is not None:
            check()
        rows = slice(y, y + _BAND)
        out[rows] = _mix_rows(original[rows], generated[rows], weight[rows])
    return out


def _mix_rows(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    w = weight[..., None].astype(np.float32)
    mixed = original.astype(np.float32) * (1.0 - w) + generated.astype(np.float32) * w
    out = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return np.where(w > 0, out, original)


def paste(
    region: np.ndarray, generated: np.ndarray, weight: np.ndarray, check: Callable[[], None] | None = None
) -> None:
    """Blend generated RGB into an RGB(A) region in place; alpha becomes opaque as far as the weight reaches."""
    for y in range(0, region.shape[0], _BAND):
        if check is not None:
            check()
        rows = slice(y, y + _BAND)
        band, w = region[rows], weight[rows]
        band[..., :3] = _mix_rows(band[..., :3], generated[rows], w)
        if band.shape[2] == 4:
            alpha = band[..., 3].astype(np.float32)
            opaque = np.clip(alpha + (255 - alpha) * w + 0.5, 0, 255)
            band[..., 3] = np.where(w > 0, opaque, band[..., 3])


def model_mask(mask: np.ndarray, size: tuple[int, int], vae_factor: int) -> torch.Tensor:
    """The selection (H, W) in a model's space of `size`: zero-padded like the image, and for latent models
    (vae_factor > 1) dilated (a maximum) to whole latent cells plus one cell of margin for the VAE's reach,
    so generated content covers every selected pixel at its highest strength. Returns (1, 1, h, w) float32."""
    import torch
    import torch.nn.functional as F

    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    m = F.pad(m, (0, size[1] - m.shape[-1], 0, size[0] - m.shape[-2]))
    if vae_factor > 1:
        m = F.max_pool2d(m, vae_factor)
        m = F.max_pool2d(m, 3, stride=1, padding=1)  # grey values stay: they are per-pixel strengths
    return m


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) on the bottom/right to a size multiple; returns the original (H, W)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
