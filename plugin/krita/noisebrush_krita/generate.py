"""One generation: read layers and selection (GUI thread), run the jobs (any thread), write results.

`generate` does all three in a row for scripts and kritarunner tests; the docker runs `run_jobs` in a
QThread between `prepare` and `apply`.
"""

from __future__ import annotations

import threading
from typing import Any

from . import krita_host as host
from .nb_client import Client
from .nb_edit import Settings, grow_to, region, result_name
from .nb_jobs import Cancelled, ProgressFn, Target, run_jobs

__all__ = ["Cancelled", "Target", "apply", "generate", "prepare", "run_jobs"]


def prepare(doc: Any, nodes: list[Any], settings: Settings) -> list[Target]:
    """Read what will be sent (Krita calls: GUI thread)."""
    sel = host.selection_bounds(doc)
    box = grow_to(region(sel, host.canvas(doc), settings.margin), host.canvas(doc))
    mask = host.selection_mask(doc, box) if sel is not None else None
    targets = []
    for node in nodes:
        host.check_node(node)
        targets.append(Target(node, node.name(), box, host.read_rgba(node, box), mask))
    return targets


def apply(doc: Any, targets: list[Target], results: list[list[bytes]], settings: Settings) -> list[Any]:
    """Write each result as a new layer right above its source (Krita calls: GUI thread)."""
    host.remove_preview(doc)
    made = []
    for t, images in zip(targets, results):
        for k, rgba in enumerate(images):
            node = host.add_layer_above(doc, t.node, result_name(t.name, settings.kind, k, len(images)))
            host.write_rgba(node, t.box, rgba)
            made.append(node)
    host.refresh(doc)
    return made


def generate(
    doc: Any,
    nodes: list[Any],
    settings: Settings,
    client: Client,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[Any]:
    """prepare + run_jobs + apply in this thread (previews off: no event loop to show them)."""
    targets = prepare(doc, nodes, settings)
    results = run_jobs(client, settings, targets, on_progress, None, cancel)
    return apply(doc, targets, results, settings)
