"""MultiDiffusion (Bar-Tal et al. 2023, eq. 5): a denoiser run in overlapping windows of a region too big for
memory, each cell's prediction the (weighted) average of the windows that cover it, at every step.

The windows agree step by step, so no seam forms where they overlap; the denoiser's feature maps then follow
the window, not the canvas, and only a few canvas-sized tensors (the sample, the running sum) remain. Averaging
the model's output is averaging the windows' next samples, as the paper does: a sampler step is affine in the
model output given the same noise. Pure torch, no model knowledge: the engine passes the window side in the
model's cells and the model's size multiple there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Denoise = Callable[[torch.Tensor, Any], torch.Tensor]

# A quarter of each window overlaps its neighbour (diffusers' tiled VAE uses the same share): wide enough for
# the windows to agree, about 1.6x the cells of untiled work at most.
OVERLAP = 0.25


def starts(length: int, tile: int, multiple: int) -> list[int]:
    """Where windows of side `tile` start along an axis of `length` cells so that they cover it with at least
    OVERLAP of a window shared between neighbours; starts are multiples of `multiple` (the UNet then sees the
    same cell grid in every window) and the last window ends at the axis' end."""
    if tile >= length:
        return [0]
    stride = max(multiple, int(tile * (1.0 - OVERLAP)) // multiple * multiple)
    n = -(-(length - tile) // stride) + 1
    last = (length - tile) // multiple * multiple
    spots = [round(i * last / (n - 1) / multiple) * multiple for i in range(n)]
    if spots[-1] + tile < length:  # `length` is not a multiple: the last window is flush with the end
        spots.append(length - tile)
    return sorted(set(spots))


def windows(size: tuple[int, int], tile: int, multiple: int) -> list[tuple[slice, slice]]:
    """(rows, cols) slices of the windows that cover a (h, w) region; one window when `tile` covers it."""
    h, w = size
    th, tw = min(tile, h), min(tile, w)
    return [
        (slice(y, y + th), slice(x, x + tw)) for y in starts(h, th, multiple) for x in starts(w, tw, multiple)
    ]


def ramp(start: int, side: int, length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A window's weights along one axis: rising linearly across the OVERLAP band at each edge that borders
    another window (not at the region's own edges), so a window's influence fades out where a neighbour takes
    over and no step in the weights can print a line where windows disagree (Jimenez 2023's blend)."""
    band = max(1, int(side * OVERLAP))
    i = torch.arange(side, dtype=torch.float32, device=device)
    w = torch.ones(side, dtype=torch.float32, device=device)
    if start > 0:
        w = torch.minimum(w, (i + 1) / (band + 1))
    if start + side < length:
        w = torch.minimum(w, (side - i) / (band + 1))
    return w.to(dtype)


def average(denoise: Denoise, x: torch.Tensor, t: Any, spans: list[tuple[slice, slice]]) -> torch.Tensor:
    """The MultiDiffusion prediction: each window denoised alone, the outputs averaged where windows overlap,
    each window weighted by its edge `ramp`s (every cell keeps a positive weight, so a constant stays one)."""
    h, w = x.shape[-2:]
    if len(spans) == 1 and spans[0] == (slice(0, h), slice(0, w)):
        return denoise(x, t)  # one window over everything: exactly the untiled call
    total: torch.Tensor | None = None
    weight = torch.zeros((1, 1, h, w), dtype=x.dtype, device=x.device)
    for rows, cols in spans:
        out = denoise(x[..., rows, cols], t)
        if total is None:  # the output may have other channels than the input (a learned variance)
            total = torch.zeros((*out.shape[:2], h, w), dtype=out.dtype, device=out.device)
        wy = ramp(rows.start, rows.stop - rows.start, h, x.dtype, x.device)
        wx = ramp(cols.start, cols.stop - cols.start, w, x.dtype, x.device)
        cell = wy[:, None] * wx[None, :]
        total[..., rows, cols] += out * cell
        weight[..., rows, cols] += cell
        del out
    assert total is not None
    return total.div_(weight)


def tiled(denoise: Denoise, size: tuple[int, int], tile: int, multiple: int) -> Denoise:
    """`denoise` run in MultiDiffusion windows of side `tile` over a (h, w) region (0: untiled, as given)."""
    if not tile or tile >= max(size):
        return denoise
    spans = windows(size, tile, multiple)

    def run(x: torch.Tensor, t: Any) -> torch.Tensor:
        return average(denoise, x, t, spans)

    return run
