"""Every call into Krita's API, in one thin module (Krita 5 and 6). Pixels cross as RGBA bytes."""

from __future__ import annotations

from typing import Any

from krita import Krita

from .nb_edit import Box, swap_red_blue
from .qtcompat import QByteArray

PREVIEW_NAME = "NoiseBrush preview"
PIXEL_TYPES = ("paintlayer", "grouplayer", "filelayer", "filllayer", "clonelayer", "vectorlayer")


class HostError(Exception):
    """Something about the document stops the run; the message is for the user."""


def active_document() -> Any:
    doc = Krita.instance().activeDocument()
    if doc is None:
        raise HostError("open an image first")
    return doc


def selected_nodes(doc: Any) -> list[Any]:
    """The layers selected in the Layers docker, else the active layer."""
    nodes: list[Any] = []
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    if view is not None:
        nodes = [n for n in view.selectedNodes() if n.type() in PIXEL_TYPES and n.name() != PREVIEW_NAME]
    if not nodes and doc.activeNode() is not None:
        nodes = [doc.activeNode()]
    if not nodes:
        raise HostError("select a layer first")
    return nodes


def check_node(node: Any) -> None:
    if node.colorModel() != "RGBA" or node.colorDepth() != "U8":
        raise HostError(
            f"layer {node.name()!r} is {node.colorModel()} {node.colorDepth()}; NoiseBrush works on "
            "8-bit RGBA "
            "(Image > Convert Image Color Space)"
        )


def canvas(doc: Any) -> Box:
    return 0, 0, doc.width(), doc.height()


def selection_bounds(doc: Any) -> Box | None:
    sel = doc.selection()
    if sel is None or sel.width() <= 0 or sel.height() <= 0:
        return None
    return sel.x(), sel.y(), sel.width(), sel.height()


def selection_mask(doc: Any, box: Box) -> bytes | None:
    """One byte per pixel of `box` (255 = selected), or None without a selection."""
    sel = doc.selection()
    if sel is None:
        return None
    return bytes(sel.pixelData(*box))


def read_rgba(node: Any, box: Box) -> bytes:
    data = node.pixelData(*box) if node.type() == "paintlayer" else node.projectionPixelData(*box)
    return swap_red_blue(bytes(data))


def write_rgba(node: Any, box: Box, rgba: bytes) -> None:
    node.setPixelData(QByteArray(swap_red_blue(rgba)), *box)


def add_layer_above(doc: Any, source: Any, name: str) -> Any:
    """A copy of `source` (a paint layer with its pixels) right above it, named `name`."""
    parent = source.parentNode() or doc.rootNode()
    if source.type() == "paintlayer":
        node = source.duplicate()
        node.setName(name)
    else:
        node = doc.createNode(name, "paintlayer")
        write_rgba(node, canvas(doc), read_rgba(source, canvas(doc)))
    parent.addChildNode(node, source)
    return node


def show_preview(doc: Any, source: Any, box: Box, rgba: bytes) -> None:
    """Draw `rgba` into the temporary preview layer above `source` (made on first use)."""
    node = doc.nodeByName(PREVIEW_NAME)
    if node is None:
        node = doc.createNode(PREVIEW_NAME, "paintlayer")
        (source.parentNode() or doc.rootNode()).addChildNode(node, source)
    write_rgba(node, box, rgba)
    doc.refreshProjection()


def remove_preview(doc: Any) -> None:
    for _ in range(16):  # one per generation normally; a crash may have left more
        node = doc.nodeByName(PREVIEW_NAME)
        if node is None:
            return
        node.remove()


def refresh(doc: Any) -> None:
    doc.refreshProjection()
    doc.waitForDone()


def read_setting(key: str, default: str = "") -> str:
    return Krita.instance().readSetting("noisebrush", key, default)


def write_setting(key: str, value: str) -> None:
    Krita.instance().writeSetting("noisebrush", key, value)


def on_close(callback: Any) -> None:
    """Call `callback` when Krita quits."""
    Krita.instance().notifier().applicationClosing.connect(callback)
