"""Where a batch's frames come from: a folder of images, an image sequence (`frame_%04d.png`) or the layers
of an OpenRaster file; and which mask goes with each frame (one for all, or a folder matched by name or frame
number). Frames are read lazily: a batch of thousands holds one frame's pixels at a time."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image

from noisebrush.core.engine.images import load_image, load_mask, to_array
from noisebrush.core.errors import BadInput

READABLE = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
_PATTERN = re.compile(r"%(0?\d*)d")  # printf-style frame number, as ffmpeg and Blender write sequences
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Frame:
    """One input of a batch. `number` is the frame number its name carries (its position when it has none);
    the independent-noise seed and the mask folder's matching use it, so adding a file elsewhere in the
    folder does not move another frame's seed."""

    index: int  # position in input order
    name: str  # the output's stem, unique within the batch
    number: int
    read: Callable[[], bytes]  # the input's bytes, hashed for the manifest
    decode: Callable[[bytes], np.ndarray]  # those bytes to uint8 RGB or RGBA pixels
    placement: str = ""  # what else decides the pixels (an .ora layer's offset); hashed with the bytes

    def load(self) -> tuple[str, np.ndarray]:
        """(the input's hash, its pixels), from one read of the file."""
        data = self.read()
        return digest(data, self.placement), self.decode(data)


def digest(data: bytes, extra: str = "") -> str:
    return hashlib.sha256(data + extra.encode()).hexdigest()


def frames_from(source: Path) -> list[Frame]:
    """The frames of a folder, an image sequence pattern or an .ora, in input order; BadInput when there are
    none or two would write the same output."""
    text = str(source)
    if _PATTERN.search(source.name):
        frames = _sequence(source)
    elif source.suffix.lower() == ".ora":
        frames = _ora_layers(source)
    elif source.is_dir():
        frames = _folder(source)
    elif source.exists():
        raise BadInput(
            f"batch input {text} is a file; give a folder of images, a sequence like frame_%04d.png or an .ora"
        )
    else:
        raise BadInput(f"batch input {text} does not exist")
    if not frames:
        raise BadInput(f"batch input {text} holds no images ({', '.join(READABLE)})")
    return _unique(frames)


def frames_of(images: list[tuple[str, np.ndarray]]) -> list[Frame]:
    """Frames already in memory (the Studio's layers, a server job's images): (name, pixels) in input order,
    numbered by position. Their bytes are the pixels themselves, so a frame's hash follows its content."""
    if not images:
        raise BadInput("a batch needs at least one image")
    frames = [
        Frame(i, name, i, partial(_pixel_bytes, image), partial(_same, image))
        for i, (name, image) in enumerate(images)
    ]
    return _unique(frames)


def _pixel_bytes(image: np.ndarray) -> bytes:
    return str(image.shape).encode() + np.ascontiguousarray(image).tobytes()


def _same(image: np.ndarray, _data: bytes) -> np.ndarray:
    return image


def _unique(frames: list[Frame]) -> list[Frame]:
    names = [f.name for f in frames]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise BadInput(f"two inputs share the name {twice[0]!r}; their outputs would overwrite each other")
    return frames


def _file_frame(index: int, path: Path, number: int) -> Frame:
    # Decoded from the file by the engine's loader (its size and format checks), not from the hashed bytes.
    return Frame(index, path.stem, number, path.read_bytes, partial(_decode_file, path))


def _decode_file(path: Path, _data: bytes) -> np.ndarray:
    return load_image(path, "frame")


def _number(stem: str, default: int) -> int:
    runs = _DIGITS.findall(stem)
    return int(runs[-1]) if runs else default


def _natural(path: Path) -> list[object]:
    """frame2 before frame10, as a painter numbers files without padding."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _folder(folder: Path) -> list[Frame]:
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in READABLE and not p.name.startswith(".")
        ),
        key=_natural,
    )
    return [_file_frame(i, p, _number(p.stem, i)) for i, p in enumerate(files)]


def _sequence(pattern: Path) -> list[Frame]:
    folder = pattern.parent
    if not folder.is_dir():
        raise BadInput(f"folder {folder} of the sequence {pattern.name} does not exist")
    found_at = _PATTERN.search(pattern.name)
    assert found_at is not None  # frames_from sends only names with a frame number here
    head, tail = pattern.name[: found_at.start()], pattern.name[found_at.end() :]
    width = found_at.group(1)
    digits = rf"\d{{{int(width)}}}" if width.startswith("0") and width != "0" else r"\d+"
    rx = re.compile(re.escape(head) + f"({digits})" + re.escape(tail) + "$")
    found = []
    for p in folder.iterdir():
        m = rx.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    found.sort()
    return [_file_frame(i, p, n) for i, (n, p) in enumerate(found)]


def _ora_layers(path: Path) -> list[Frame]:
    """Each painted layer of an .ora as a canvas-sized RGBA frame, bottom first (the order of a layer list
    read upwards). Groups are looked into; their own settings do not apply to a layer edited alone."""
    if not path.is_file():
        raise BadInput(f"batch input {path} does not exist")
    try:
        with zipfile.ZipFile(path) as z:
            if z.read("mimetype").decode("ascii", "replace").strip() != "image/openraster":
                raise BadInput(f"{path} is not an OpenRaster file (its mimetype says otherwise)")
            root = ET.fromstring(z.read("stack.xml"))
    except (zipfile.BadZipFile, KeyError, ET.ParseError, OSError) as e:
        raise BadInput(f"{path} cannot be read as an OpenRaster file: {e}") from None
    try:
        size = (int(root.get("w", "0")), int(root.get("h", "0")))
    except ValueError:
        raise BadInput(f"{path}: stack.xml gives no canvas size") from None
    if not (0 < size[0] <= 65536 and 0 < size[1] <= 65536):
        raise BadInput(f"{path}: stack.xml gives a canvas of {size[0]}x{size[1]}")
    layers = [node for node in root.iter("layer") if node.get("src")]
    layers.reverse()  # stack.xml lists top first
    frames = []
    for i, node in enumerate(layers):
        src = node.get("src", "")
        name = _safe(node.get("name") or f"layer{i}")
        try:
            offset = (int(float(node.get("x") or 0)), int(float(node.get("y") or 0)))
        except ValueError:
            raise BadInput(f"{path}: layer {name!r} has an offset that is not a number") from None
        frames.append(
            Frame(
                i,
                f"{i:03d}-{name}",
                i,
                partial(_member, path, src),
                partial(_placed, offset=offset, size=size, what=f"{path.name}:{src}"),
                f"offset {offset} canvas {size}",
            )
        )
    return frames


def _member(path: Path, src: str) -> bytes:
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(src)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise BadInput(f"layer {src} of {path.name} cannot be read: {e}") from None


def _placed(data: bytes, offset: tuple[int, int], size: tuple[int, int], what: str) -> np.ndarray:
    """A layer's PNG put at its offset on a transparent canvas the document's size."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            layer = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError) as e:
        raise BadInput(f"layer {what} is not a readable PNG: {e}") from None
    canvas = np.zeros((size[1], size[0], 4), np.uint8)
    x, y = offset
    h, w = layer.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size[0]), min(y + h, size[1])
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = layer[y0 - y : y1 - y, x0 - x : x1 - x]
    return to_array(Image.fromarray(canvas, "RGBA"))


def _safe(name: str) -> str:
    """A layer name as part of a file name: no folders, no characters file systems refuse."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._")
    return cleaned[:60] or "layer"


class Masks:
    """The mask of each frame: none, one file for all, or a folder matched by the frame's name, else by
    its frame number (the last digits in the mask's name); or in memory, one for all or one per frame."""

    def __init__(
        self,
        source: Path | None,
        image: np.ndarray | None = None,
        images: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        """`source` a file or folder; or `image`, one mask in memory for every frame (a selection); or
        `images`, one mask (None: all may change) per frame by its index (layers of different bounds)."""
        if image is not None and images is not None:
            raise BadInput("give one mask for every frame or one mask per frame, not both")
        self.source = source
        self.image = image
        self.images = None if images is None else list(images)
        self._hashes: dict[Path, str] = {}
        self._memory_hashes: dict[int, str] = {}  # by frame index; -1 for the one mask of every frame
        self._by_name: dict[str, Path] = {}
        self._by_number: dict[int, Path] = {}
        if source is None:
            return
        if source.is_dir():
            for p in sorted(source.iterdir(), key=_natural):
                if p.is_file() and p.suffix.lower() in READABLE:
                    self._by_name.setdefault(p.stem, p)
                    runs = _DIGITS.findall(p.stem)
                    if runs:
                        self._by_number.setdefault(int(runs[-1]), p)
            if not self._by_name:
                raise BadInput(f"mask folder {source} holds no images")
        elif not source.is_file():
            raise BadInput(f"mask {source} does not exist")

    @property
    def in_memory(self) -> bool:
        return self.image is not None or self.images is not None

    def _given(self, frame: Frame) -> np.ndarray | None:
        """`frame`'s mask held in memory; BadInput (that frame fails alone) when the list has none for it."""
        if self.images is None:
            return self.image
        if not 0 <= frame.index < len(self.images):
            raise BadInput(
                f"no mask for frame {frame.name}: {len(self.images)} masks were given, one per frame in "
                "input order"
            )
        return self.images[frame.index]

    def path(self, frame: Frame) -> Path | None:
        """The mask file of `frame`; BadInput (that frame fails alone) when a folder has none for it."""
        if self.source is None or self.source.is_file():
            return self.source
        found = self._by_name.get(frame.name) or self._by_number.get(frame.number)
        if found is None:
            raise BadInput(f"no mask in {self.source} is named {frame.name} or numbered {frame.number}")
        return found

    def hash(self, frame: Frame) -> str | None:
        """The hash of `frame`'s mask for the manifest (each file read once), None without a mask."""
        if self.in_memory:
            mask = self._given(frame)
            if mask is None:
                return None
            key = -1 if self.images is None else frame.index
            return self._memory_hashes.setdefault(key, digest(_pixel_bytes(mask)))
        path = self.path(frame)
        if path is None:
            return None
        if path not in self._hashes:
            self._hashes[path] = digest(path.read_bytes())
        return self._hashes[path]

    def load(self, frame: Frame, image: np.ndarray) -> np.ndarray | None:
        """`frame`'s mask at the size of its pixels `image`, or None."""
        if self.in_memory:
            mask = self._given(frame)
            if mask is not None and mask.shape[:2] != image.shape[:2]:
                raise BadInput(
                    f"the mask is {mask.shape[1]}x{mask.shape[0]}, "
                    f"frame {frame.name} is {image.shape[1]}x{image.shape[0]}; they must be the same size"
                )
            return mask
        path = self.path(frame)
        return None if path is None else load_mask(path, (image.shape[1], image.shape[0]))
