"""OpenRaster (.ora) read and write, as Krita, GIMP and MyPaint use it. numpy + PIL, no Qt.

A zip whose first entry `mimetype` is stored uncompressed and holds `image/openraster`; `stack.xml`
lists the layers top first (`<image w h><stack><layer name src x y opacity visibility .../>`), layer
PNGs live under `data/`, with `Thumbnails/thumbnail.png` (<= 256 px) and `mergedimage.png`.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image

from .layer import Layer
from .pixels import composite

MIMETYPE = "image/openraster"
THUMBNAIL_MAX = 256


class FileFormatError(ValueError):
    """A file that cannot be read as the format it claims; the message says what is wrong."""


def _png_bytes(rgba: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buf, "PNG", compress_level=compress_level)
    return buf.getvalue()


def _thumbnail(merged: np.ndarray) -> np.ndarray:
    img = Image.fromarray(merged, "RGBA")
    img.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX), Image.Resampling.LANCZOS)
    return np.asarray(img)


def write_ora(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    layers: Sequence[Layer],
    compress_level: int = 6,
) -> None:
    """Write `layers` (bottom first) as an OpenRaster file, atomically (temp file then rename)."""
    merged = composite(layers, (0, 0, width, height))
    stack = ET.Element("stack")
    entries: list[tuple[str, bytes]] = []
    for i, layer in enumerate(reversed(layers)):
        src = f"data/layer{len(layers) - 1 - i:03d}.png"
        ET.SubElement(
            stack,
            "layer",
            {
                "name": layer.name,
                "src": src,
                "x": str(layer.x),
                "y": str(layer.y),
                "opacity": f"{layer.opacity:.4f}",
                "visibility": "visible" if layer.visible else "hidden",
                "composite-op": layer.blend,
                "edit-locked": "true" if layer.locked else "false",
                "alpha-locked": "true" if layer.alpha_locked else "false",
            },
        )
        entries.append((src, _png_bytes(layer.pixels, compress_level)))
    image = ET.Element("image", {"version": "0.0.5", "w": str(width), "h": str(height)})
    image.append(stack)
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(image, encoding="utf-8")

    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".ora-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as z:
            # The mimetype entry must come first and be stored, so `file` and hosts can sniff it.
            z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
            z.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
            for src, data in entries:
                z.writestr(src, data, compress_type=zipfile.ZIP_STORED)
            z.writestr("Thumbnails/thumbnail.png", _png_bytes(_thumbnail(merged), compress_level))
            z.writestr("mergedimage.png", _png_bytes(merged, compress_level))
        give_usual_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask, read without setting it where the OS allows (os.umask has no getter, and
    setting it to read it would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_usual_mode(tmp: str, target: str) -> None:
    """Give the temporary file (made 0600 by mkstemp) the mode a plain open() would give `target`:
    that of the file it replaces, else 0666 less the umask (0644 under the usual umask 022)."""
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)


def _int(el: ET.Element, key: str, default: int, where: str) -> int:
    raw = el.get(key)
    if raw is None:
        return default
    try:
        return int(round(float(raw)))
    except ValueError:
        raise FileFormatError(f"{where}: {key}={raw!r} is not a number") from None


def _layers_of(stack: ET.Element, z: zipfile.ZipFile, dx: int, dy: int) -> list[Layer]:
    """Layers of a stack, top first; nested stacks are flattened into their children."""
    out: list[Layer] = []
    for el in stack:
        if el.tag == "stack":
            out += _layers_of(el, z, dx + _int(el, "x", 0, "stack"), dy + _int(el, "y", 0, "stack"))
            continue
        if el.tag != "layer":
            continue
        name = el.get("name", f"Layer {len(out) + 1}")
        where = f"layer {name!r}"
        src = el.get("src")
        if not src:
            raise FileFormatError(f"{where} has no src")
        try:
            data = z.read(src)
        except KeyError:
            raise FileFormatError(f"{where}: {src} is missing from the archive") from None
        try:
            with Image.open(io.BytesIO(data)) as img:
                pixels = np.asarray(img.convert("RGBA")).copy()
        except Exception as e:
            raise FileFormatError(f"{where}: {src} is not a readable image ({e})") from None
        try:
            opacity = float(el.get("opacity", "1"))
        except ValueError:
            raise FileFormatError(f"{where}: opacity={el.get('opacity')!r} is not a number") from None
        out.append(
            Layer(
                name,
                pixels,
                _int(el, "x", 0, where) + dx,
                _int(el, "y", 0, where) + dy,
                min(1.0, max(0.0, opacity)),
                el.get("visibility", "visible") != "hidden",
                el.get("edit-locked", "false") == "true",
                # A mode we cannot draw is kept, so saving gives it back to the program that wrote it.
                blend=el.get("composite-op", "svg:src-over") or "svg:src-over",
                alpha_locked=el.get("alpha-locked", "false") == "true",
            )
        )
    return out


def read_ora(path: str | os.PathLike[str]) -> tuple[int, int, list[Layer]]:
    """(width, height, layers bottom first) of an OpenRaster file; FileFormatError if it is not one."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise FileFormatError(
            f"{os.fspath(path)} is not an OpenRaster file: not a zip archive ({e})"
        ) from None
    with z:
        try:
            mimetype = z.read("mimetype").decode("ascii", "replace").strip()
        except KeyError:
            raise FileFormatError("not an OpenRaster file: the mimetype entry is missing") from None
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise FileFormatError(f"the archive is damaged ({e})") from None
        if mimetype != MIMETYPE:
            raise FileFormatError(f"not an OpenRaster file: mimetype is {mimetype!r}, expected {MIMETYPE!r}")
        try:
            root = ET.fromstring(z.read("stack.xml"))
        except KeyError:
            raise FileFormatError("stack.xml is missing") from None
        except (ET.ParseError, zipfile.BadZipFile, OSError) as e:
            raise FileFormatError(f"stack.xml cannot be read ({e})") from None
        if root.tag != "image":
            raise FileFormatError(f"stack.xml's root is <{root.tag}>, expected <image>")
        width, height = _int(root, "w", 0, "image"), _int(root, "h", 0, "image")
        if not (0 < width <= 65536 and 0 < height <= 65536):
            raise FileFormatError(f"image size {width}x{height} is not usable")
        stack = root.find("stack")
        if stack is None:
            raise FileFormatError("stack.xml has no <stack>")
        try:
            layers = _layers_of(stack, z, 0, 0)
        except (zipfile.BadZipFile, OSError) as e:
            raise FileFormatError(f"the archive is damaged ({e})") from None
    layers.reverse()
    return width, height, layers
