"""Copy, cut, copy merged and paste through the system clipboard, and opening a file as a layer.

What is copied goes on the clipboard as an ordinary image, so another program pastes it, and an image
copied in another program (or an image file copied in a file manager) pastes here. A paste always
makes a new layer (Krita's habit: nothing floats), centred on the pointer when it is over the canvas,
else on the middle of the view; Paste in Place puts our own copy back where it was cut from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QByteArray, QMimeData
from PyQt6.QtGui import QClipboard, QImage
from PyQt6.QtWidgets import QApplication

from .document import Document
from .model.layer import Layer
from .model.pixels import Box, composite, crop, erase, intersect, nonzero_box, region_of
from .render import array_image

ORIGIN_MIME = "application/x-noisebrush-origin"  # "x,y": where a copy came from, for Paste in Place


def image_to_rgba(image: QImage) -> np.ndarray:
    """Straight-alpha RGBA8 (h, w, 4) copy of a QImage of any format."""
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = img.width(), img.height()
    ptr = img.constBits()
    assert ptr is not None
    ptr.setsize(img.sizeInBytes())
    rows = np.frombuffer(ptr.asstring(), np.uint8).reshape(h, img.bytesPerLine())
    return rows[:, : w * 4].reshape(h, w, 4).copy()


def rgba_to_image(rgba: np.ndarray) -> QImage:
    return array_image(np.ascontiguousarray(rgba), QImage.Format.Format_RGBA8888).copy()


def _system_clipboard() -> QClipboard:
    board = QApplication.clipboard()
    if board is None:
        raise RuntimeError("no clipboard: the application has not started")
    return board


def clipboard_image() -> tuple[np.ndarray, tuple[int, int] | None] | None:
    """The image on the clipboard (and where we copied it from, if we did), or None."""
    data = _system_clipboard().mimeData()
    if data is None:
        return None
    if data.hasImage():
        image = data.imageData()
        if isinstance(image, QImage) and not image.isNull():
            return image_to_rgba(image), _origin(data)
    for url in data.urls() if data.hasUrls() else []:
        image = QImage(url.toLocalFile())
        if not image.isNull():
            return image_to_rgba(image), None
    return None


def _origin(data: QMimeData) -> tuple[int, int] | None:
    if not data.hasFormat(ORIGIN_MIME):
        return None
    try:
        x, y = bytes(data.data(ORIGIN_MIME).data()).decode().split(",")
        return int(x), int(y)
    except ValueError:
        return None


class ClipboardVerbs:
    """The Edit menu's clipboard verbs on `doc`. `drop_point` says where a paste goes (document
    coordinates); `notify` shows a status message."""

    def __init__(
        self,
        doc: Document,
        drop_point: Callable[[], tuple[float, float]],
        notify: Callable[[str], None],
    ) -> None:
        self.doc, self.drop_point, self.notify = doc, drop_point, notify

    # --- copy ---------------------------------------------------------------------------------

    def _area(self, within: Box) -> tuple[Box, np.ndarray | None] | None:
        """The part of `within` (document box) the selection covers, with its mask there (None: all)."""
        bounds = self.doc.selection.bounds
        if bounds is None:
            return within, None
        box = intersect(bounds, within)
        if box is None:
            return None
        return box, region_of(self.doc.selection.mask, box)

    def _layer_part(self, layer: Layer) -> tuple[Box, np.ndarray, np.ndarray | None] | None:
        """(document box, the layer's pixels there, selection mask there) of what a copy takes."""
        area = self._area(layer.rect)
        if area is None:
            return None
        box, mask = area
        lbox = (box[0] - layer.x, box[1] - layer.y, box[2], box[3])
        return box, crop(layer.pixels, lbox), mask

    def _put(self, rgba: np.ndarray, box: Box, what: str) -> bool:
        """Put `rgba` (lying at `box`) on the clipboard, trimmed to its non-transparent part."""
        trim = nonzero_box(rgba[..., 3])
        if trim is None:
            self.notify(f"Nothing to copy: {what} is transparent there")
            return False
        rgba = crop(rgba, trim)
        data = QMimeData()
        data.setImageData(rgba_to_image(rgba))
        data.setData(ORIGIN_MIME, QByteArray(f"{box[0] + trim[0]},{box[1] + trim[1]}".encode()))
        _system_clipboard().setMimeData(data)
        self.notify(f"Copied {rgba.shape[1]}\u00d7{rgba.shape[0]} pixels")
        return True

    def copy(self) -> bool:
        """The active layer inside the selection (all of it with nothing selected)."""
        layer = self.doc.active
        if layer is None:
            self.notify("No layer to copy from")
            return False
        part = self._layer_part(layer)
        if part is None:
            self.notify(f"The selection does not touch layer \u201c{layer.name}\u201d")
            return False
        box, pixels, mask = part
        rgba = pixels.copy()
        if mask is not None:
            rgba[..., 3] = np.round(rgba[..., 3] * mask).astype(np.uint8)
        return self._put(rgba, box, f"layer \u201c{layer.name}\u201d")

    def copy_merged(self) -> bool:
        """What is visible inside the selection, all layers together."""
        area = self._area(self.doc.rect)
        if area is None:
            return False
        box, mask = area
        rgba = composite(self.doc.layers, box)
        if mask is not None:
            rgba[..., 3] = np.round(rgba[..., 3] * mask).astype(np.uint8)
        return self._put(rgba, box, "the image")

    def cut(self) -> bool:
        """Copy, then clear what was copied from the active layer (one undo step)."""
        layer = self.doc.active
        if layer is None or not self.copy():
            return False
        if layer.locked:
            self.notify(f"Copied, not cut: layer \u201c{layer.name}\u201d is locked")
            return False
        part = self._layer_part(layer)
        assert part is not None
        box, pixels, mask = part
        old = pixels.copy()
        new = erase(old, np.ones(old.shape[:2], np.float32) if mask is None else mask)
        lbox = (box[0] - layer.x, box[1] - layer.y, box[2], box[3])
        self.doc.commit_pixels(layer, lbox, old, new, "Cut", applied=False)
        return True

    # --- paste --------------------------------------------------------------------------------

    def paste(self, in_place: bool = False) -> Layer | None:
        """The clipboard's image as a new layer above the active one, centred where `drop_point`
        says (or, in place, where it was copied from)."""
        found = clipboard_image()
        if found is None:
            self.notify("The clipboard holds no image")
            return None
        rgba, origin = found
        at = origin if in_place and origin is not None else None
        return self.add_image_layer(rgba, "Pasted", at, "Paste")

    def add_image_layer(
        self, rgba: np.ndarray, base: str, at: tuple[int, int] | None = None, text: str = "Add layer"
    ) -> Layer:
        """`rgba` as a new layer above the active one, with its top-left at `at`, or centred on the
        drop point; one undo step."""
        h, w = rgba.shape[:2]
        if at is None:
            cx, cy = self.drop_point()
            at = (round(cx - w / 2), round(cy - h / 2))
        layer = Layer(self.doc.next_layer_name(base), rgba, at[0], at[1])
        doc = self.doc
        index = doc.index_of(doc.active) + 1 if doc.active in doc.layers else len(doc.layers)
        doc.insert_layer(layer, index, text)
        self.notify(f"{text}: {w}\u00d7{h} at ({at[0]}, {at[1]})")
        return layer

    def open_as_layer(self, path: str, rgba: np.ndarray) -> Layer:
        return self.add_image_layer(rgba, Path(path).stem or "Layer", None, "Open as layer")
