"""One generation: read layers and selection (GUI thread), run the jobs (any thread), write results (GUI thread).

`generate` does all three in a row for scripts and kritarunner tests; the docker runs `run_jobs` in a
QThread between `prepare` and `apply`.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import krita_host as host
from . import nb_png
from .nb_client import Client, ServerError
from .nb_edit import Box, Settings, grow_to, job_body, keep_unselected, region, result_name, to_rgba


class Cancelled(Exception):
    """The user stopped the run; nothing was written."""


@dataclass
class Target:
    """One source layer: the box sent to the server, its pixels and the selection inside it."""

    node: Any
    name: str
    box: Box
    rgba: bytes
    mask: bytes | None  # one byte per pixel of box; None = the whole box may change


ProgressFn = Callable[[int, int, int], None]  # (target index, step, total)
PreviewFn = Callable[[int, Box, bytes], None]  # (target index, box in document pixels, RGBA bytes)


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


def run_jobs(
    client: Client,
    settings: Settings,
    targets: list[Target],
    on_progress: ProgressFn | None = None,
    on_preview: PreviewFn | None = None,
    cancel: threading.Event | None = None,
) -> list[list[bytes]]:
    """Submit every target, wait for each in turn, return the RGBA results (no Krita calls: any thread)."""
    cancel = cancel or threading.Event()
    jobs = []
    for t in targets:
        x, y, w, h = t.box
        image = nb_png.encode(w, h, 4, t.rgba)
        mask = nb_png.encode(w, h, 1, t.mask) if t.mask is not None else None
        jobs.append(client.submit(job_body(settings, image, mask))["id"])
    results: list[list[bytes]] = []
    try:
        for i, (t, job_id) in enumerate(zip(targets, jobs)):

            def on_event(event: str, data: dict[str, Any], i: int = i, t: Target = t) -> None:
                if event == "progress" and on_progress is not None:
                    on_progress(i, int(data.get("step", 0)), int(data.get("total", 0)))
                elif event == "preview" and on_preview is not None and settings.previews:
                    bx, by, bw, bh = data["box"]
                    w, h, c, px = nb_png.decode(base64.b64decode(data["png"]))
                    if (w, h) == (bw, bh):
                        on_preview(i, (t.box[0] + bx, t.box[1] + by, w, h), to_rgba(px, c))

            state = client.wait(job_id, on_event, cancel.is_set)
            if state["status"] == "cancelled":
                raise Cancelled()
            if state["status"] == "failed":
                raise ServerError(f"{t.name}: {state.get('error') or 'the job failed'}")
            results.append([_decode(img, t) for img in state.get("images") or []])
    except BaseException:
        for job_id in jobs[len(results) :]:
            try:
                client.cancel(job_id)
            except ServerError:
                pass
        raise
    return results


def _decode(b64: str, t: Target) -> bytes:
    w, h, c, px = nb_png.decode(base64.b64decode(b64))
    if (w, h) != t.box[2:]:
        raise ServerError(f"{t.name}: the server sent {w}x{h} pixels for a {t.box[2]}x{t.box[3]} region")
    rgba = to_rgba(px, c)
    return rgba if t.mask is None else keep_unselected(t.rgba, rgba, t.mask)


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
