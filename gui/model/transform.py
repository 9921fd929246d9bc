"""Free transform of a layer's pixels: move, scale, rotate, flip about the content's centre. numpy +
PIL, no Qt.

A `Placement` is what the painter edits with the transform handles; `transform_pixels` renders it.
Resampling is done on premultiplied pixels, so transparent edges do not bleed a dark fringe; a flip,
a quarter turn or a whole-pixel move lands every sample on a source pixel centre and comes back exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from .pixels import Box, nonzero_box


@dataclass(frozen=True)
class Placement:
    """Scale (`sx`, `sy`; negative flips), then rotate by `angle` degrees (clockwise on screen), about
    the content's centre (`cx`, `cy`), then move by (`tx`, `ty`). Document coordinates."""

    cx: float
    cy: float
    tx: float = 0.0
    ty: float = 0.0
    sx: float = 1.0
    sy: float = 1.0
    angle: float = 0.0

    def matrix(self) -> np.ndarray:
        """3x3 affine map from document coordinates before to after."""
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        rs = np.array([[c * self.sx, -s * self.sy], [s * self.sx, c * self.sy]])
        centre = np.array([self.cx, self.cy])
        out = np.eye(3)
        out[:2, :2] = rs
        out[:2, 2] = centre + (self.tx, self.ty) - rs @ centre
        return out

    def map(self, x: float, y: float) -> tuple[float, float]:
        m = self.matrix()
        return (float(m[0, 0] * x + m[0, 1] * y + m[0, 2]), float(m[1, 0] * x + m[1, 1] * y + m[1, 2]))

    @property
    def centre(self) -> tuple[float, float]:
        """Where the content's centre is now."""
        return (self.cx + self.tx, self.cy + self.ty)

    @property
    def is_identity(self) -> bool:
        return (self.tx, self.ty, self.sx, self.sy, self.angle % 360.0) == (0.0, 0.0, 1.0, 1.0, 0.0)

    def flipped(self, horizontal: bool) -> Placement:
        """Mirrored on screen, left-right or top-bottom, about the current centre."""
        # Mirroring the result is mirroring the source and turning the other way.
        if horizontal:
            return replace(self, sx=-self.sx, angle=-self.angle)
        return replace(self, sy=-self.sy, angle=-self.angle)


def content_box(pixels: np.ndarray) -> Box | None:
    """Box of the pixels with any alpha, in the array's coordinates; None if all transparent."""
    return nonzero_box(pixels[..., 3])


def transformed_box(placement: Placement, box: Box) -> Box:
    """Smallest whole-pixel box holding `box` (document coordinates) once placed."""
    x, y, w, h = box
    pts = [placement.map(px, py) for px, py in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))]
    # A corner that lands a hair off a pixel edge through float error must not add a pixel.
    x0 = math.floor(min(p[0] for p in pts) + 1e-6)
    y0 = math.floor(min(p[1] for p in pts) + 1e-6)
    x1 = math.ceil(max(p[0] for p in pts) - 1e-6)
    y1 = math.ceil(max(p[1] for p in pts) - 1e-6)
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def transform_pixels(
    pixels: np.ndarray, x: int, y: int, placement: Placement, smooth: bool = True
) -> tuple[np.ndarray, int, int]:
    """`pixels` (straight RGBA8) lying at (x, y), placed: (new pixels, new x, new y). Bicubic, or
    nearest-neighbour with smooth=False (the cheap live preview of a big layer)."""
    h, w = pixels.shape[:2]
    if placement.is_identity:
        return pixels.copy(), x, y
    if abs(placement.sx) * w < 0.5 or abs(placement.sy) * h < 0.5:
        raise ValueError(
            f"the transform scales the layer to less than a pixel (scale {placement.sx:g} x {placement.sy:g})"
        )
    nx, ny, nw, nh = transformed_box(placement, (x, y, w, h))
    # PIL wants the map from output pixel to input pixel coordinates.
    out_to_doc = np.array([[1.0, 0, nx], [0, 1.0, ny], [0, 0, 1.0]])
    doc_to_in = np.array([[1.0, 0, -x], [0, 1.0, -y], [0, 0, 1.0]])
    inverse = doc_to_in @ np.linalg.inv(placement.matrix()) @ out_to_doc
    coeffs = tuple(float(v) for v in inverse[:2].ravel())
    resample = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    src = Image.fromarray(np.ascontiguousarray(pixels), "RGBA").convert("RGBa")
    out = src.transform((nw, nh), Image.Transform.AFFINE, coeffs, resample=resample)
    return np.asarray(out.convert("RGBA")).copy(), nx, ny
