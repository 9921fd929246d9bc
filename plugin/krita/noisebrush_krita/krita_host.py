"""Every call into Krita's API, in one thin module (Krita 5 and 6). Pixels cross as RGBA bytes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
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


def keyframe_times(doc: Any, node: Any) -> list[int]:
    """The times of `node`'s keyframes in the document's clip range, in order ([] if it is not animated).
    Krita 5.1.5's Python API lists no keyframes, so each time of the range is asked."""
    if not node.animated():
        return []
    first, last = doc.fullClipRangeStartTime(), doc.fullClipRangeEndTime()
    return [t for t in range(first, last + 1) if node.hasKeyframeAtTime(t)]


def read_rgba_at(node: Any, box: Box, time: int) -> bytes:
    """The pixels of the keyframe at `time` (Node.pixelDataAtTime answers nothing between keyframes)."""
    data = bytes(node.pixelDataAtTime(*box, time))
    if len(data) != box[2] * box[3] * 4:
        raise HostError(f"layer {node.name()!r} has no keyframe at frame {time}")
    return swap_red_blue(data)


def write_rgba_at(doc: Any, node: Any, box: Box, rgba: bytes, time: int) -> None:
    """Write into the keyframe shown at `time`: 5.1.5 has no setPixelDataAtTime, but setPixelData writes
    the current time's keyframe."""
    doc.setCurrentTime(time)
    doc.waitForDone()
    write_rgba(node, box, rgba)
    doc.waitForDone()


def region_signature(node: Any, box: Box) -> int:
    """A cheap fingerprint of the layer's pixels in `box` (Live mode polls it; see live.py)."""
    return zlib.crc32(bytes(node.pixelData(*box)))


def write_rgba(node: Any, box: Box, rgba: bytes) -> None:
    node.setPixelData(QByteArray(swap_red_blue(rgba)), *box)


def add_layer_above(doc: Any, source: Any, name: str) -> Any:
    """A copy of `source` (a paint layer with its pixels) right above it, named `name`."""
    node = _copy_of(doc, source, name)
    (source.parentNode() or doc.rootNode()).addChildNode(node, source)
    return node


def _copy_of(doc: Any, source: Any, name: str) -> Any:
    """A paint layer named `name` with the pixels of `source`, not yet in the document."""
    if source.type() == "paintlayer":
        node = source.duplicate()
        node.setName(name)
    else:
        node = doc.createNode(name, "paintlayer")
        write_rgba(node, canvas(doc), read_rgba(source, canvas(doc)))
    return node


@dataclass
class Placeholders:
    """The layers a generation writes into, named PREVIEW_NAME while the previews arrive and given the
    final pixels and their names at the end (`generate.apply`).

    Making the preview layer become the result keeps a generation at one step of Krita's undo history:
    Krita 5.1.5 records adding and removing a layer but not setPixelData or setName, so a preview layer
    added and later removed left two more steps, and the second Ctrl+Z brought the preview back.
    """

    nodes: list[Any]  # one placeholder per source, in the sources' order
    added: Any  # the one node added to the document: the placeholder, or the batch's group
    undo_text: str  # Edit > Undo's text right after adding it, and the layer stack then:
    stack: list[str]  # while both are unchanged, our adding is still the last undoable step


def add_placeholders(doc: Any, sources: list[Any], label: str) -> Placeholders:
    """One layer right above a single source; for a batch, one group named "NoiseBrush <label>" right
    above the topmost source, holding a layer per source in stack order.

    Either way the document gets one node, so one Ctrl+Z takes the whole generation back. Krita 5.1.5's
    Python API cannot group undo steps, but children put into a group before the group joins the
    document are not steps of their own (measured in the full Krita window: one edit_undo removes the
    group with its layers and leaves the stack as it was). A layer per source right above each source
    would be one step per layer.
    """
    if len(sources) == 1:
        added = add_layer_above(doc, sources[0], PREVIEW_NAME)
        nodes = [added]
    else:
        order = {n.uniqueId().toString(): i for i, n in enumerate(_all_nodes(doc.rootNode()))}
        ranked = sorted(sources, key=lambda n: order.get(n.uniqueId().toString(), -1))
        copies = {id(s): _copy_of(doc, s, PREVIEW_NAME) for s in sources}
        added = doc.createGroupLayer(f"NoiseBrush {label}")
        added.setChildNodes([copies[id(s)] for s in ranked])
        top = ranked[-1]
        (top.parentNode() or doc.rootNode()).addChildNode(added, top)
        nodes = [copies[id(s)] for s in sources]
    doc.waitForDone()
    return Placeholders(nodes, added, undo_text(), _stack(doc))


def _all_nodes(node: Any) -> list[Any]:
    out = []
    for child in node.childNodes():
        out += [child, *_all_nodes(child)]
    return out


def _stack(doc: Any) -> list[str]:
    return [n.name() for n in _all_nodes(doc.rootNode())]


def show_preview(doc: Any, node: Any, box: Box, rgba: bytes) -> None:
    """Draw `rgba` into a placeholder layer (Placeholders.nodes)."""
    write_rgba(node, box, rgba)
    doc.refreshProjection()


def discard(doc: Any, made: Placeholders) -> None:
    """Take the placeholders away after a cancel or failure, leaving no undo step that brings them back:
    Krita's own Undo while their adding is still the last step; removing them (two steps) otherwise."""
    undo = Krita.instance().action("edit_undo")
    if undo is not None and undo.text() == made.undo_text and _stack(doc) == made.stack:
        undo.trigger()
        doc.waitForDone()
    alive = {n.uniqueId().toString() for n in _all_nodes(doc.rootNode())}
    if made.added.uniqueId().toString() in alive:  # the undo was not ours to use, or did not take it
        made.added.remove()
    doc.refreshProjection()


def undo_text() -> str:
    """The text of Edit > Undo ("Undo Add Layer"), or "" without a window (kritarunner)."""
    action = Krita.instance().action("edit_undo")
    return action.text() if action is not None else ""


def status_message(text: str) -> None:
    """Show `text` in the active window's status bar (nothing without a window)."""
    window = Krita.instance().activeWindow()
    if window is not None:
        window.qwindow().statusBar().showMessage(text, 0 if text.endswith("...") else 10000)


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
