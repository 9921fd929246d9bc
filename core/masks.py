"""Selection masks: the crop a run needs, inward feathering and the final pixel-space composite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


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


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """Soften the mask's border inwards only: outside the mask stays exactly 0, deep inside stays 1."""
    if radius <= 0:
        return mask.astype(np.float32)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    k = 2 * radius + 1
    # a box blur applied twice is close to a Gaussian and costs O(1) per pixel whatever the radius
    blurred = m
    for _ in range(2):
        blurred = F.avg_pool2d(F.pad(blurred, (radius,) * 4, mode="replicate"), k, stride=1)
    eroded = torch.clamp(2.0 * blurred - 1.0, 0.0, 1.0)  # reaches 1 only well inside the selection
    return torch.minimum(m, eroded)[0, 0].numpy()


def composite(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """original * (1 - weight) + generated * weight, in uint8; where weight is 0 the original bytes stay."""
    w = weight[..., None].astype(np.float32)
    mixed = original.astype(np.float32) * (1.0 - w) + generated.astype(np.float32) * w
    out = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return np.where(w > 0, out, original)


def paste(region: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> None:
    """Blend generated RGB into an RGB(A) region in place; alpha becomes opaque as far as the weight reaches."""
    region[..., :3] = composite(region[..., :3], generated, weight)
    if region.shape[2] == 4:
        alpha = region[..., 3].astype(np.float32)
        opaque = np.clip(alpha + (255 - alpha) * weight + 0.5, 0, 255)
        region[..., 3] = np.where(weight > 0, opaque, region[..., 3])


def model_mask(mask: np.ndarray, size: tuple[int, int], vae_factor: int) -> torch.Tensor:
    """The selection (H, W) in a model's space of `size`: zero-padded like the image, and for latent models
    (vae_factor > 1) dilated to whole latent cells plus one cell of margin for the VAE's reach, so generated
    content covers every selected pixel. Returns (1, 1, h, w) float32."""
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    m = F.pad(m, (0, size[1] - m.shape[-1], 0, size[0] - m.shape[-2]))
    if vae_factor > 1:
        m = F.max_pool2d(m, vae_factor)
        m = F.max_pool2d(m, 3, stride=1, padding=1)
        m = (m > 0).float()
    return m


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) on the bottom/right to a size multiple; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
