"""One generation: read layers and selection (GUI thread), run the jobs (any thread), write results.

`generate` does all three in a row for scripts and kritarunner tests; the docker runs `run_jobs` in a
QThread between `prepare` (plus `krita_host.add_placeholders`, the layers the previews and results go
into) and `apply`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import krita_host as host
from .krita_host import PREVIEW_NAME
from .nb_client import Client
from .nb_edit import LABELS, Settings, grow_to, region, result_name
from .nb_jobs import Cancelled, ProgressFn, Stop, Target, run_jobs

__all__ = ["Cancelled", "Stop", "Target", "apply", "generate", "generate_frames", "prepare", "run_jobs"]


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


def prepare_frames(doc: Any, node: Any, settings: Settings) -> tuple[list[int], list[Target]]:
    """The keyframes of an animated paint layer as targets, one per keyframe time (Krita calls: GUI thread)."""
    host.check_node(node)
    if node.type() != "paintlayer":
        raise host.HostError(f"layer {node.name()!r} is a {node.type()}; frames are read from a paint layer")
    times = host.keyframe_times(doc, node)
    if not times:
        raise host.HostError(
            f"layer {node.name()!r} has no keyframes in the clip range; add frames in the Animation Timeline"
        )
    sel = host.selection_bounds(doc)
    box = grow_to(region(sel, host.canvas(doc), settings.context), host.canvas(doc))
    mask = host.selection_mask(doc, box) if sel is not None else None
    targets = [Target(node, f"{node.name()} frame {t}", box, host.read_rgba_at(node, box, t), mask) for t in times]
    return times, targets


def generate_frames(
    doc: Any,
    node: Any,
    settings: Settings,
    client: Client,
    on_progress: ProgressFn | None = None,
    cancel: Stop | None = None,
) -> Any:
    """Every keyframe of the animated paint layer `node` through one batch job (every frame on the same
    seed, so what stays still between frames stays still in the results), into one new layer above it: a
    copy of `node`, which keeps its keyframes and timing, with each keyframe's result written at its time.
    Two steps of Krita's undo history: the new layer, and the switch of the current time the writing needs
    (5.1.5 has no call that writes a frame other than the current one)."""
    settings = replace(settings, variations=1)
    times, targets = prepare_frames(doc, node, settings)
    results = run_jobs(client, settings, targets, on_progress, None, cancel)
    now = doc.currentTime()
    out = host.add_layer_above(doc, node, result_name(node.name(), settings.kind, 0, 1))
    for t, target, images in zip(times, targets, results, strict=True):
        host.write_rgba_at(doc, out, target.box, images[0], t)
    doc.setCurrentTime(now)
    host.refresh(doc)
    return out
