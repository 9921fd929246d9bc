"""Pixels between numpy and torch: uint8 (H, W, C) images and the models' (B, C, H, W) tensors in [-1, 1],
and the resizing the resolution plans use. One place for the conversion that SDEdit, LEDITS and the
previews share, so the rounding is the same everywhere."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def chw(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> a (1, C, H, W) uint8 tensor. torch will not wrap a read-only array (a decoded PNG
    is one) without a warning, so that one is copied: in uint8, a quarter of the float copy that follows."""
    source = np.ascontiguousarray(rgb) if rgb.flags.writeable else rgb.copy()
    return torch.from_numpy(source).permute(2, 0, 1)[None]


def to_unit(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [-1, 1] on `device`; the scale `to_uint8` reads back.
    In place after the one float copy: a 4096 canvas has no second float temporary."""
    return chw(rgb).to(device, torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] to (B, H, W, 3) uint8, rounding as diffusers' image processor does."""
    x = (x.float() / 2 + 0.5).clamp(0, 1)
    return (x.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(B, C, H, W) to `size` (h, w): "area" averages on the way down (no aliasing), "bicubic" on the way up."""
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def resized(rgb: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """uint8 (H, W, C) to `size` with `resize`, rounded back to uint8."""
    y = resize(chw(rgb).float(), size, mode)
    return y.clamp_(0, 255).round_()[0].permute(1, 2, 0).to(torch.uint8).numpy()


def resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float (H, W) mask to `size`, averaged: a soft edge stays soft."""
    return resize(torch.from_numpy(np.ascontiguousarray(mask))[None, None], size, "area")[0, 0].numpy()
