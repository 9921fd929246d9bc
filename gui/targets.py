"""What a generation works on, cut from the document, and how its output becomes a new layer.

Only the selection's bounding box plus context is cut out, so a small selection on a 4096 x 4096
canvas stays cheap. Output layers hold only the changed region and sit above their source layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisebrush.core.engine.fields import specs
from noisebrush.core.engine.requests import SDEditRequest

from .document import Document
from .model.layer import Layer
from .model.pixels import Box, composite, crop, intersect, nonzero_box, region_of

WHERE = ("selection", "layer", "layers")  # visible image in the selection / active layer / selected layers


@dataclass
class Target:
    source: Layer  # the new layer goes right above this one
    box: Box  # document box the guide was cut from
    guide: np.ndarray  # (h, w, 4) uint8, a copy the GUI thread no longer touches
    mask: np.ndarray | None  # (h, w) float32 in [0, 1], 1 = may change; None = all of it
    keep_alpha: bool  # a layer's own transparency survives (layer targets); the visible image is opaque


# The pixels of context around the selection that the prior sees: the request's own default. The engine
# crops the guide it is given to the mask's box plus the same context (core/engine/masks.py work_box), so
# cutting here only keeps a big canvas from being composited and copied whole.
CONTEXT = specs(SDEditRequest)["context"].default


def _grow(box: Box, context: int, within: Box) -> Box | None:
    x, y, w, h = box
    return intersect((x - context, y - context, w + 2 * context, h + 2 * context), within)


def build_targets(doc: Document, where: str, context: int = CONTEXT) -> list[Target]:
    """Cut guides for `where` (see WHERE). Empty when there is nothing to work on."""
    if where not in WHERE:
        raise ValueError(f"unknown target {where!r}; allowed: {', '.join(WHERE)}")
    sel = doc.selection.clip()
    bounds = doc.selection.bounds
    if where == "selection":
        source = doc.active or (doc.layers[-1] if doc.layers else None)
        if source is None:
            return []
        box = doc.rect if bounds is None else _grow(bounds, context, doc.rect)
        if box is None:
            return []
        return [Target(source, box, composite(doc.layers, box), region_of(sel, box), False)]
    layers = [doc.active] if where == "layer" and doc.active else doc.selected_layers()
    out = []
    for layer in layers:
        if layer is None:
            continue
        within = intersect(layer.rect, doc.rect)
        if within is None:
            continue
        box = within if bounds is None else _grow(bounds, context, within)
        if box is None or (bounds is not None and intersect(bounds, layer.rect) is None):
            continue
        lbox = (box[0] - layer.x, box[1] - layer.y, box[2], box[3])
        out.append(Target(layer, box, crop(layer.pixels, lbox).copy(), region_of(sel, box), True))
    return out


def layer_region(layer: Layer, box: Box) -> np.ndarray:
    """`layer`'s own RGBA pixels over a document box (a guide's), transparent where the layer does not reach.
    Its visibility, opacity and blend mode play no part: a control sketch is often a hidden layer."""
    out = np.zeros((box[3], box[2], 4), np.uint8)
    inner = intersect(box, layer.rect)
    if inner is not None:
        x, y, w, h = inner
        out[y - box[1] : y - box[1] + h, x - box[0] : x - box[0] + w] = crop(
            layer.pixels, (x - layer.x, y - layer.y, w, h)
        )
    return out


def result_layer(target: Target, output: np.ndarray, name: str) -> Layer | None:
    """A new layer holding `output` (the guide's size, RGB or RGBA) where the mask let it change."""
    h, w = target.guide.shape[:2]
    if output.shape[:2] != (h, w):
        raise ValueError(f"the engine returned {output.shape[1]}x{output.shape[0]} for a {w}x{h} guide")
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = output[..., :3]
    if output.shape[2] == 4:
        rgba[..., 3] = output[..., 3]
    elif target.keep_alpha:
        rgba[..., 3] = target.guide[..., 3]
    else:
        rgba[..., 3] = 255
    x, y = target.box[0], target.box[1]
    if target.mask is not None:
        inside = target.mask > 0
        rgba[~inside] = 0
        box = nonzero_box(inside)
        if box is None:
            return None
        rgba = crop(rgba, box).copy()
        x, y = x + box[0], y + box[1]
    return Layer(name, rgba, x, y)
