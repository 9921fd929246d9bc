"""Control images made from a guide with numpy alone: Canny-like edges and thick scribble lines.

Both are white lines on black, what canny and scribble ControlNets were trained on. Edges follow Canny (1986):
Gaussian blur, Sobel gradients, non-maximum suppression along the gradient, then hysteresis between two
thresholds (relative to the strongest gradient). Hysteresis grows strong edges into weak ones by repeated
8-neighbour dilation, at most HYSTERESIS_STEPS pixels along a chain, which is where "like" comes in.
"""

from __future__ import annotations

import numpy as np

HYSTERESIS_STEPS = 64


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    k /= k.sum()
    padded = np.pad(img, radius, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view
    rows = windows(padded, k.size, axis=1) @ k
    return windows(rows, k.size, axis=0) @ k


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """a moved by (dy, dx), edges filled with zeros."""
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _dilate(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    for dy, dx in _NEIGHBOURS:
        out |= _shift(a, dy, dx)
    return out


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def edge_map(rgb: np.ndarray, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """Canny-like edges of an RGB uint8 image: bool (H, W)."""
    g = _gaussian(_grey(rgb), sigma)
    p = np.pad(g, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.hypot(gx, gy)
    top = float(mag.max())
    if top <= 1e-6:
        return np.zeros(g.shape, bool)
    # Non-maximum suppression: keep a pixel only where it beats both neighbours across the edge.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = ((angle + 22.5) // 45).astype(int) % 4  # 0: horizontal gradient, 1: 45, 2: vertical, 3: 135
    keep = np.zeros(g.shape, bool)
    for s, (dy, dx) in enumerate([(0, 1), (1, 1), (1, 0), (1, -1)]):
        here = sector == s
        keep |= here & (mag >= _shift(mag, dy, dx)) & (mag >= _shift(mag, -dy, -dx))
    thin = np.where(keep, mag, 0.0)
    strong = thin >= high * top
    weak = thin >= low * top
    for _ in range(HYSTERESIS_STEPS):
        grown = _dilate(strong) & weak
        if np.array_equal(grown, strong):
            break
        strong = grown
    return strong


def edges(rgb: np.ndarray) -> np.ndarray:
    """The control image of a canny ControlNet: thin white edges on black, RGB uint8."""
    return np.repeat(edge_map(rgb)[..., None] * np.uint8(255), 3, axis=2)


def scribble(rgb: np.ndarray, width: int = 2) -> np.ndarray:
    """The control image of a scribble ControlNet: the coarse shapes' outlines as thick white lines."""
    lines = edge_map(rgb, sigma=2.5, low=0.15, high=0.3)
    for _ in range(width):
        lines = _dilate(lines)
    return np.repeat(lines[..., None] * np.uint8(255), 3, axis=2)


MAPS = {"edges": edges, "scribble": scribble}
