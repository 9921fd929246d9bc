"""Documents to and from files by extension: layered .ora, flat PNG / JPEG / WebP. numpy + PIL, no Qt."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .layer import Layer
from .ora import FileFormatError, give_usual_mode, read_ora, write_ora
from .pixels import composite, flatten_on

FLAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
OPEN_FILTER = "Images (*.ora *.png *.jpg *.jpeg *.webp);;OpenRaster (*.ora);;All files (*)"
SAVE_FILTER = "OpenRaster, keeps layers (*.ora);;PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"

__all__ = ["FileFormatError", "read_document", "write_document", "is_layered", "OPEN_FILTER", "SAVE_FILTER"]


def is_layered(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".ora"


def read_document(path: str | os.PathLike[str]) -> tuple[int, int, list[Layer]]:
    """(width, height, layers bottom first); FileFormatError naming the problem if unreadable."""
    suffix = Path(path).suffix.lower()
    if suffix == ".ora":
        return read_ora(path)
    try:
        with Image.open(path) as img:
            img.load()
            rgba = np.asarray(img.convert("RGBA")).copy()
    except FileNotFoundError:
        raise FileFormatError(f"{os.fspath(path)} does not exist") from None
    except Exception as e:
        raise FileFormatError(f"{Path(path).name} is not a readable image ({e})") from None
    h, w = rgba.shape[:2]
    return w, h, [Layer(Path(path).stem or "Background", rgba)]


def write_document(
    path: str | os.PathLike[str], width: int, height: int, layers: Sequence[Layer], quality: int = 95
) -> None:
    """Write by extension; flat formats get the visible composite (JPEG over white). Atomic."""
    suffix = Path(path).suffix.lower()
    if suffix == ".ora":
        write_ora(path, width, height, layers)
        return
    fmt = FLAT.get(suffix)
    if fmt is None:
        raise FileFormatError(
            f"cannot save {suffix or 'files without an extension'}; use .ora, .png, .jpg or .webp"
        )
    merged = composite(layers, (0, 0, width, height))
    if fmt == "JPEG":
        img = Image.fromarray(flatten_on(merged), "RGB")
        kwargs: dict[str, object] = {"quality": quality}
    else:
        img = Image.fromarray(merged, "RGBA")
        kwargs = {"quality": quality} if fmt == "WEBP" else {}
    target = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".nb-", suffix=suffix, dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, fmt, **kwargs)
        give_usual_mode(tmp, target)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
