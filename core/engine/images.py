"""Image files in and out: safe decoding (bombs, truncation, odd modes), masks, atomic writes."""

from __future__ import annotations

import base64
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from noisebrush.core.errors import BadInput

# 100 megapixels: a 10000x10000 canvas loads; a 30000x30000 decompression bomb is refused from its header,
# before a single pixel is decoded.
MAX_PIXELS = 100_000_000
WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _open(path: str | os.PathLike[str], what: str) -> Image.Image:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{what} {p} does not exist")
    if p.is_dir():
        raise BadInput(f"{what} {p} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
    except Image.DecompressionBombError as e:
        pixels = e.args[0].split("(")[1].split()[0] if "(" in str(e) else "too many"
        raise BadInput(
            f"{what} {p} has {pixels} pixels; at most {MAX_PIXELS / 1e6:.0f} megapixels are allowed"
        ) from None
    except UnidentifiedImageError as e:
        raise BadInput(f"{what} {p} is not an image PIL can read (PNG, JPEG, WebP, TIFF, ...): {e}") from None
    except OSError as e:
        raise BadInput(f"{what} {p} could not be read: {e}") from None
    w, h = im.size
    if w == 0 or h == 0:
        raise BadInput(f"{what} {p} is {w}x{h} pixels; it must not be empty")
    if w * h > MAX_PIXELS:
        raise BadInput(
            f"{what} {p} is {w}x{h} = {w * h / 1e6:.0f} megapixels; at most {MAX_PIXELS / 1e6:.0f} are allowed"
        )
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInput(f"{what} {p} is damaged or truncated: {e}") from None
    return im


def to_array(im: Image.Image) -> np.ndarray:
    """Any PIL mode to uint8 RGB, or RGBA when the image carries transparency."""
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode == "P" and "transparency" in im.info
    )
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if has_alpha and arr[..., 3].min() == 255:
        arr = arr[..., :3]  # an alpha channel that is opaque everywhere carries nothing
    return np.ascontiguousarray(arr)


def load_image(path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """Read an image file as (H, W, 3) or (H, W, 4) uint8; BadInput with the reason otherwise."""
    im = _open(path, what)
    if im.width < 8 or im.height < 8:
        raise BadInput(f"{what} {path} is {im.width}x{im.height}; at least 8x8 pixels are needed")
    try:
        return to_array(im)
    except (ValueError, OSError) as e:  # a mode PIL reads but cannot convert
        raise _unconvertible(path, what, im.mode, e) from None


def _unconvertible(path: str | os.PathLike[str], what: str, mode: str, error: Exception) -> BadInput:
    return BadInput(
        f"{what} {path} has colour mode {mode}, which cannot be converted ({error}); "
        "save it as RGB, RGBA or greyscale"
    )


def load_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask as float32 (H, W) in [0, 1]: white (1) may change, black (0) is kept; grey blends.

    A mask with transparency uses its alpha times its luminance, so a selection exported from a paint
    program (opaque where selected) works as well as a plain greyscale mask. `size` is (width, height).
    """
    im = _open(path, "mask")
    try:
        im = ImageOps.exif_transpose(im) or im
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            a = np.asarray(im, dtype=np.float64)
            m = a / (65535.0 if a.max() > 255 else 255.0)
        else:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
            lum = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            m = lum * rgba[..., 3]
    except (ValueError, OSError) as e:  # a mode PIL reads but cannot convert (LAB, ...)
        raise _unconvertible(path, "mask", im.mode, e) from None
    if size is not None and (im.width, im.height) != tuple(size):
        raise BadInput(
            f"mask is {im.width}x{im.height} but the image is {size[0]}x{size[1]}; they must be the same size"
        )
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write atomically (temporary file, then rename), so an error never leaves a half-written file."""
    p = Path(path)
    fmt = WRITABLE.get(p.suffix.lower())
    if fmt is None:
        raise BadInput(f"cannot write {p.name}: use one of {', '.join(sorted(WRITABLE))}")
    if not p.parent.exists():
        raise BadInput(f"folder {p.parent} does not exist")
    if fmt == "JPEG" and image.ndim == 3 and image.shape[2] == 4:
        image = flatten(image, background=255)  # JPEG has no alpha: paper-white under transparent paint
    im = Image.fromarray(image)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved picture gets the usual permissions
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def flatten(image: np.ndarray, background: int = 255) -> np.ndarray:
    """RGBA over a plain background (white, like paper); RGB unchanged."""
    if image.shape[2] == 3:
        return image
    a = image[..., 3:4].astype(np.float32) / 255.0
    rgb = image[..., :3].astype(np.float32) * a + background * (1.0 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def encode_png(arr: np.ndarray) -> str:
    """uint8 (H, W[, 1-4]) -> base64 PNG with unfiltered rows, which the plugins' plain-Python decoder reads fast."""
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    h, w, c = a.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, w * c)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
    return base64.b64encode(png + _chunk(b"IEND", b"")).decode("ascii")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )
