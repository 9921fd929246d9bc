"""Pixel arithmetic on numpy RGBA8 arrays: boxes, compositing, masks, fill. No Qt here.

Boxes are (x, y, w, h) tuples of ints. Colours are straight-alpha RGBA8.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import overload

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .layer import Layer

Box = tuple[int, int, int, int]


def intersect(a: Box, b: Box) -> Box | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


# with a box on either side the union is a box, so callers that know one need not check for None
@overload
def union(a: Box, b: Box | None) -> Box: ...
@overload
def union(a: Box | None, b: Box) -> Box: ...
@overload
def union(a: Box | None, b: Box | None) -> Box | None: ...
def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None:
        return b
    if b is None:
        return a
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def nonzero_box(a: np.ndarray) -> Box | None:
    """Bounding box of the non-zero elements of a 2-D array."""
    rows = np.flatnonzero(a.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(a.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def changed_box(old: np.ndarray, new: np.ndarray) -> Box | None:
    """Bounding box of the pixels that differ between two same-shaped arrays."""
    diff = old != new
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    return nonzero_box(diff)


def crop(a: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    return a[y : y + h, x : x + w]


def region_of(mask: np.ndarray | None, box: Box) -> np.ndarray | None:
    """A (h, w) float32 view of `mask` (uint8, 255 = selected) over `box` in the mask's coordinates,
    zero outside the mask's extent. None for no mask (everything may change)."""
    if mask is None:
        return None
    x, y, w, h = box
    out = np.zeros((h, w), np.float32)
    inner = intersect(box, (0, 0, mask.shape[1], mask.shape[0]))
    if inner is not None:
        ix, iy, iw, ih = inner
        out[iy - y : iy - y + ih, ix - x : ix - x + iw] = mask[iy : iy + ih, ix : ix + iw] * (1.0 / 255.0)
    return out


# --- compositing ---------------------------------------------------------------------------------

NORMAL = "svg:src-over"


def _overlay(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _hard_light(cs, cb)


def _hard_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.where(cs <= 0.5, 2.0 * cs * cb, 1.0 - 2.0 * (1.0 - cs) * (1.0 - cb))


def _soft_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    d = np.where(cb <= 0.25, ((16.0 * cb - 12.0) * cb + 4.0) * cb, np.sqrt(cb))
    return np.where(cs <= 0.5, cb - (1.0 - 2.0 * cs) * cb * (1.0 - cb), cb + (2.0 * cs - 1.0) * (d - cb))


def _dodge(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.minimum(1.0, cb / (1.0 - cs))
    return np.where(cb <= 0.0, 0.0, np.where(cs >= 1.0, 1.0, out))


def _burn(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - np.minimum(1.0, (1.0 - cb) / cs)
    return np.where(cb >= 1.0, 1.0, np.where(cs <= 0.0, 0.0, out))


# The separable blend modes of the W3C Compositing spec under their OpenRaster names (what Krita, GIMP
# and MyPaint write as composite-op), each B(backdrop, source) on straight colours in [0, 1]. Exclusion has
# no OpenRaster name: real Krita and GIMP opened an "svg:exclusion" layer as Normal, so it is not offered.
BLEND_MODES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None]] = {
    NORMAL: ("Normal", None),
    "svg:multiply": ("Multiply", lambda cb, cs: cb * cs),
    "svg:screen": ("Screen", lambda cb, cs: cb + cs - cb * cs),
    "svg:overlay": ("Overlay", _overlay),
    "svg:darken": ("Darken", np.minimum),
    "svg:lighten": ("Lighten", np.maximum),
    "svg:color-dodge": ("Colour dodge", _dodge),
    "svg:color-burn": ("Colour burn", _burn),
    "svg:hard-light": ("Hard light", _hard_light),
    "svg:soft-light": ("Soft light", _soft_light),
    "svg:difference": ("Difference", lambda cb, cs: np.abs(cb - cs)),
}


def blend_label(op: str) -> str:
    """The name the painter sees; a mode we do not draw is named and said to show as Normal."""
    known = BLEND_MODES.get(op)
    return known[0] if known else f"{op} (shown as Normal)"


def _blend_into(dst: np.ndarray, src: np.ndarray, a: np.ndarray, fn: Callable[..., np.ndarray]) -> None:
    """Lay straight-alpha `src` (RGBA8) with coverage `a` over premultiplied channel-first `dst` with
    the blend function `fn` (W3C Compositing: co = cs(1 - ab) + cb(1 - as) + as ab B(Cb, Cs))."""
    ab = dst[3].copy()
    inv_ab = np.where(ab > 0, 1.0 / np.maximum(ab, np.float32(1e-8)), 0.0).astype(np.float32)
    both = a * ab
    for c in range(3):
        cs = src[..., c] * np.float32(1.0 / 255.0)
        cb = np.clip(dst[c] * inv_ab, 0.0, 1.0)
        mixed = np.clip(fn(cb, cs), 0.0, 1.0).astype(np.float32)
        dst[c] = cs * a * (1.0 - ab) + dst[c] * (1.0 - a) + both * mixed
    dst[3] = a + ab * (1.0 - a)


def _axis(origin: int, start: int, count: int, step: int, size: int) -> tuple[int, int, int]:
    """Sample indices start + i*step (document) inside a layer at `origin` of `size`:
    returns (first i, number of samples, first layer index)."""
    first = -((start - origin) // step) if start < origin else 0
    layer_first = start + first * step - origin
    if layer_first >= size or first >= count:
        return (0, 0, 0)
    n = min(count - first, (size - 1 - layer_first) // step + 1)
    return (first, max(0, n), layer_first)


def composite_premultiplied(layers: Iterable[Layer], box: Box, step: int = 1) -> np.ndarray:
    """Premultiplied RGBA float32 (h, w, 4) in [0, 1] of the visible layers over `box`, sampling every
    `step`th document pixel (step > 1 gives the cheap zoomed-out view).

    The result is a view of a channel-first array: numpy runs each operation over whole rows of one
    channel instead of over runs of four, which makes a brush dab's recomposite several times cheaper."""
    x, y, w, h = box
    cw, ch = -(-w // step), -(-h // step)
    acc = np.zeros((4, ch, cw), np.float32)
    empty = True  # nothing below yet: no need to fade it
    for layer in layers:
        if not layer.visible or layer.opacity <= 0.0:
            continue
        i0, ni, li = _axis(layer.x, x, cw, step, layer.width)
        j0, nj, lj = _axis(layer.y, y, ch, step, layer.height)
        if ni <= 0 or nj <= 0:
            continue
        src = layer.pixels[lj : lj + nj * step : step, li : li + ni * step : step]
        a = src[..., 3] * np.float32(layer.opacity / 255.0)
        dst = acc[:, j0 : j0 + nj, i0 : i0 + ni]
        blend = BLEND_MODES.get(layer.blend, BLEND_MODES[NORMAL])[1]
        if blend is not None and not empty:
            _blend_into(dst, src, a, blend)
            continue
        if not empty:
            if not a.any():
                continue
            dst *= 1.0 - a
        colour = a * np.float32(1.0 / 255.0)
        for c in range(3):
            dst[c] += src[..., c] * colour
        dst[3] += a
        empty = False
    return acc.transpose(1, 2, 0)


def composite(layers: Iterable[Layer], box: Box) -> np.ndarray:
    """Straight-alpha RGBA8 (h, w, 4) of the visible layers over `box`."""
    acc = composite_premultiplied(layers, box).transpose(2, 0, 1)  # back to channel-first
    # Un-premultiply by the alpha as it will be stored (8-bit), so that compositing the result again
    # gives back the premultiplied colour to within rounding: exactly where it is opaque.
    a8 = np.clip(np.floor(acc[3] * 255.0 + 0.5), 0, 255)
    scale = np.float32(255.0 * 255.0) / np.maximum(a8, 1.0)
    out = np.empty(acc.shape[1:] + (4,), np.uint8)
    for c in range(3):
        out[..., c] = np.where(a8 > 0, np.clip(acc[c] * scale + 0.5, 0, 255), 0)
    out[..., 3] = a8
    return out


def to_rgba8_premultiplied(acc: np.ndarray) -> np.ndarray:
    """Contiguous premultiplied RGBA8 (h, w, 4) of a premultiplied float composite."""
    out = np.empty(acc.shape, np.uint8)
    for c in range(4):
        v = acc[..., c] * np.float32(255.0)
        v += 0.5
        np.clip(v, 0, 255, out=v)
        out[..., c] = v
    return out


def flatten_on(rgba: np.ndarray, background: Sequence[int] = (255, 255, 255)) -> np.ndarray:
    """RGB8 of straight-alpha RGBA8 over an opaque background colour."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, np.float32)
    rgb = rgba[..., :3].astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def paint_over(base: np.ndarray, color: Sequence[int], alpha: np.ndarray) -> np.ndarray:
    """Straight-alpha `color` laid over `base` (h, w, 4 uint8) with per-pixel coverage `alpha` in [0, 1].
    Pixels with zero coverage come back bit-identical."""
    new = alpha * np.float32(color[3] / 255.0 if len(color) > 3 else 1.0)
    old = base[..., 3] * np.float32(1.0 / 255.0)
    old *= 1.0 - new  # how much of the old pixel still shows
    out_a = new + old
    norm = np.float32(1.0) / np.maximum(out_a, np.float32(1e-8))
    new *= norm
    old *= norm
    out = base.copy()
    touched = alpha > 0
    # One channel at a time: whole rows per numpy call, not runs of four.
    for c in range(3):
        v = base[..., c] * old
        v += np.float32(color[c]) * new
        v += 0.5
        np.clip(v, 0, 255, out=v)
        np.copyto(out[..., c], v, where=touched, casting="unsafe")
    out_a *= 255.0
    out_a += 0.5
    np.clip(out_a, 0, 255, out=out_a)
    np.copyto(out[..., 3], out_a, where=touched, casting="unsafe")
    return out


def erase(base: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`base` with its alpha reduced by coverage `alpha` in [0, 1]; untouched pixels bit-identical."""
    out = base.copy()
    a = base[..., 3].astype(np.float32) * (1.0 - alpha)
    out[..., 3] = np.where(alpha > 0, np.clip(a + 0.5, 0, 255), base[..., 3])
    return out


# --- brush dabs ----------------------------------------------------------------------------------


def dab_box(cx: float, cy: float, radius: float) -> Box:
    r = radius + 1.0
    x0, y0 = int(np.floor(cx - r)), int(np.floor(cy - r))
    x1, y1 = int(np.ceil(cx + r)) + 1, int(np.ceil(cy + r)) + 1
    return (x0, y0, x1 - x0, y1 - y0)


def dab_alpha(box: Box, cx: float, cy: float, radius: float, hardness: float) -> np.ndarray:
    """Coverage in [0, 1] of a round dab over `box`: 1 inside `hardness * radius`, falling linearly to 0
    at `radius`, with a one-pixel antialiased edge."""
    x, y, w, h = box
    xs = np.arange(x, x + w, dtype=np.float32) + 0.5 - cx
    ys = np.arange(y, y + h, dtype=np.float32) + 0.5 - cy
    d = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    radius = max(radius, 0.5)
    inner = min(hardness, 0.999) * radius
    soft = np.clip((radius - d) / max(radius - inner, 1.0), 0.0, 1.0)
    return soft.astype(np.float32)


# --- selection shapes ----------------------------------------------------------------------------


def shape_mask(size: tuple[int, int], kind: str, points: Sequence[tuple[float, float]]) -> np.ndarray:
    """uint8 (h, w) mask, 255 inside: kind "rect" or "ellipse" from two corner points, "polygon" from
    the lasso's points."""
    w, h = size
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    if kind in ("rect", "ellipse"):
        (ax, ay), (bx, by) = points[0], points[-1]
        x0, x1 = sorted((ax, bx))
        y0, y1 = sorted((ay, by))
        if kind == "rect":
            x0i, y0i, x1i, y1i = round(x0), round(y0), round(x1), round(y1)
            if x1i > x0i and y1i > y0i:
                draw.rectangle((x0i, y0i, x1i - 1, y1i - 1), fill=255)
        elif x1 - x0 >= 1 and y1 - y0 >= 1:
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
    elif kind == "polygon":
        if len(points) >= 3:
            draw.polygon([(float(px), float(py)) for px, py in points], fill=255)
    else:
        raise ValueError(f"unknown selection shape {kind!r}; allowed: rect, ellipse, polygon")
    return np.asarray(img, np.uint8).copy()


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """The mask blurred by a Gaussian of `radius` pixels (soft selection edge)."""
    if radius <= 0:
        return mask.copy()
    img = Image.fromarray(mask, "L").filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, np.uint8).copy()


# --- fill ----------------------------------------------------------------------------------------


def _fill_runs(reach: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Grow `reach` along rows to whole runs of `allowed` that it touches."""
    h, w = allowed.shape
    flat_allowed = allowed.ravel()
    # A run starts where allowed begins or at a row start; label runs by cumulative starts.
    starts = flat_allowed.copy()
    starts[1:] &= ~flat_allowed[:-1]
    starts.reshape(h, w)[:, 0] = flat_allowed.reshape(h, w)[:, 0]
    labels = np.cumsum(starts) * flat_allowed
    hit = np.zeros(int(labels.max()) + 1, bool)
    hit[labels[reach.ravel() & flat_allowed]] = True
    hit[0] = False
    return hit[labels].reshape(h, w)


def flood_region(pixels: np.ndarray, x: int, y: int, tolerance: int = 32) -> np.ndarray:
    """Boolean (h, w) region of 4-connected pixels whose RGBA differs from the seed's by at most
    `tolerance` per channel (alternating row and column run passes until nothing grows)."""
    seed = pixels[y, x].astype(np.int16)
    allowed = (np.abs(pixels.astype(np.int16) - seed) <= tolerance).all(axis=2)
    reach = np.zeros_like(allowed)
    reach[y, x] = True
    count = 1
    while True:
        reach = _fill_runs(reach, allowed)
        reach = _fill_runs(reach.T.copy(), allowed.T.copy()).T
        n = int(reach.sum())
        if n == count:
            return reach
        count = n
