"""One generation: read layers and selection (GUI thread), run the jobs (any thread), write results.

`generate` does all three in a row for scripts and kritarunner tests; the docker runs `run_jobs` in a
QThread between `prepare` (plus `krita_host.add_placeholders`, the layers the previews and results go
into) and `apply`. The keyframes of an animated layer go the same way: `prepare_frames`, `run_jobs`,
`write_frames` (`generate_frames` for scripts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import krita_host as host
from .krita_host import PREVIEW_NAME
from .nb_client import Client
from .nb_edit import LABELS, Settings, grow_to, region, result_name
from .nb_jobs import Cancelled, ProgressFn, Stop, Target, run_jobs

__all__ = [
    "Cancelled",
    "Frames",
    "Stop",
    "Target",
    "apply",
    "generate",
    "generate_frames",
    "prepare",
    "prepare_frames",
    "run_jobs",
    "write_frames",
]


def prepare(doc: Any, nodes: list[Any], settings: Settings) -> list[Target]:
    """Read what will be sent (Krita calls: GUI thread)."""
    sel = host.selection_bounds(doc)
    box = grow_to(region(sel, host.canvas(doc), settings.context), host.canvas(doc))
    mask = host.selection_mask(doc, box) if sel is not None else None
    targets = []
    for node in nodes:
        host.check_node(node)
        targets.append(Target(node, node.name(), box, host.read_rgba(node, box), mask))
    return targets


def apply(
    doc: Any, targets: list[Target], results: list[list[bytes]], settings: Settings, made: host.Placeholders
) -> list[Any]:
    """Each placeholder becomes its source's first result: final pixels, then its name, neither of which
    is a step of Krita's undo history, so the generation stays the one step that added the placeholder
    (or the batch's group). Further variations are new layers above it (one undo step each). Krita
    calls: GUI thread."""
    out = []
    for t, node, images in zip(targets, made.nodes, results, strict=True):
        if not images:
            node.remove()
            continue
        for k, rgba in enumerate(images):
            if k:
                node = host.add_layer_above(doc, node, PREVIEW_NAME)
            host.write_rgba(node, t.box, rgba)
            node.setName(result_name(t.name, settings.kind, k, len(images)))
            out.append(node)
    host.refresh(doc)
    return out


def generate(
    doc: Any,
    nodes: list[Any],
    settings: Settings,
    client: Client,
    on_progress: ProgressFn | None = None,
    cancel: Stop | None = None,
) -> list[Any]:
    """prepare + placeholders + run_jobs + apply in this thread (no event loop to show previews)."""
    targets = prepare(doc, nodes, settings)
    made = host.add_placeholders(doc, nodes, LABELS[settings.kind])
    try:
        results = run_jobs(client, settings, targets, on_progress, None, cancel)
    except BaseException:
        host.discard(doc, made)
        raise
    return apply(doc, targets, results, settings, made)


@dataclass
class Frames:
    """The keyframes of one animated paint layer, read and ready to send as one batch job."""

    node: Any
    times: list[int]  # one per target, in order
    targets: list[Target]
    settings: Settings  # one result per keyframe, no previews (no layer shows them while the batch runs)


def prepare_frames(doc: Any, node: Any, settings: Settings) -> Frames:
    """The keyframes of an animated paint layer as targets, one per keyframe time (Krita calls: GUI thread)."""
    host.check_node(node)
    if node.type() != "paintlayer":
        raise host.HostError(f"layer {node.name()!r} is a {node.type()}; frames are read from a paint layer")
    times = host.keyframe_times(doc, node)
    if not times:
        if node.animated():  # keyframes there are, but none inside the clip range
            first, last = doc.fullClipRangeStartTime(), doc.fullClipRangeEndTime()
            raise host.HostError(
                f"layer {node.name()!r} has no keyframes in the clip range {first}-{last}: "
                "move them into it or widen it in the Timeline"
            )
        raise host.HostError(f"layer {node.name()!r} has no keyframes: animate it in the Timeline first")
    sel = host.selection_bounds(doc)
    box = grow_to(region(sel, host.canvas(doc), settings.context), host.canvas(doc))
    mask = host.selection_mask(doc, box) if sel is not None else None
    targets = [Target(node, f"{node.name()} frame {t}", box, host.read_rgba_at(node, box, t), mask) for t in times]
    return Frames(node, times, targets, replace(settings, variations=1, previews=False))


def write_frames(doc: Any, frames: Frames, results: list[list[bytes]]) -> Any:
    """One new layer above the source: a copy of it, which keeps its keyframes and timing, with each
    keyframe's result written at its time. Two steps of Krita's undo history: the new layer, and the
    switch of the current time the writing needs (5.1.5 has no call that writes a frame other than the
    current one); the painter's current time comes back. Krita calls: GUI thread."""
    now = doc.currentTime()
    out = host.add_layer_above(doc, frames.node, result_name(frames.node.name(), frames.settings.kind, 0, 1))
    for t, target, images in zip(frames.times, frames.targets, results, strict=True):
        host.write_rgba_at(doc, out, target.box, images[0], t)
    doc.setCurrentTime(now)
    host.refresh(doc)
    return out


def generate_frames(
    doc: Any,
    node: Any,
    settings: Settings,
    client: Client,
    on_progress: ProgressFn | None = None,
    cancel: Stop | None = None,
) -> Any:
    """Every keyframe of the animated paint layer `node` through one batch job (every frame on the same
    seed, so what stays still between frames stays still in the results), into one new layer above it
    (write_frames). prepare_frames + run_jobs + write_frames in this thread, for scripts; the docker runs
    run_jobs on its QThread in between."""
    frames = prepare_frames(doc, node, settings)
    results = run_jobs(client, frames.settings, frames.targets, on_progress, None, cancel)
    return write_frames(doc, frames, results)
