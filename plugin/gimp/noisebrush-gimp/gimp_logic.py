"""The GIMP plug-in's work in plain Python: regions, jobs and new layers through a thin `host` object.

`host` is gimp_host.GimpHost in GIMP and a fake in the unit tests; nothing here imports gi.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from nb_client import Client
from nb_edit import Box, Settings, grow_to, region, result_name
from nb_jobs import Target, run_jobs


class Host(Protocol):
    def layer_bounds(self, drawable: Any) -> Box: ...  # (offset x, offset y, width, height) in image pixels
    def layer_name(self, drawable: Any) -> str: ...
    def selection_bounds(self, image: Any) -> Box | None: ...  # image pixels; None = no selection
    def selection_mask(self, image: Any, box: Box) -> bytes: ...  # one byte per pixel, image pixels
    def read_rgba(self, drawable: Any, box: Box) -> bytes: ...  # layer pixels
    def write_rgba(self, drawable: Any, box: Box, rgba: bytes) -> None: ...
    def add_layer_above(self, image: Any, source: Any, name: str) -> Any: ...  # a copy of source
    def undo_group_start(self, image: Any) -> None: ...
    def undo_group_end(self, image: Any) -> None: ...
    def progress(self, fraction: float, text: str = "") -> None: ...
    def flush(self) -> None: ...


def prepare(host: Host, image: Any, drawables: list[Any], settings: Settings) -> list[Target]:
    """For each drawable: the selection's box (grown by the margin) inside the layer, its pixels and mask."""
    if not drawables:
        raise ValueError("select a layer first")
    sel = host.selection_bounds(image)
    targets = []
    for d in drawables:
        lx, ly, lw, lh = host.layer_bounds(d)
        x, y, w, h = grow_to(region(sel, (lx, ly, lw, lh), settings.margin), (lx, ly, lw, lh))
        mask = host.selection_mask(image, (x, y, w, h)) if sel is not None else None
        local = (x - lx, y - ly, w, h)
        targets.append(Target(d, host.layer_name(d), local, host.read_rgba(d, local), mask))
    return targets


def apply(
    host: Host, image: Any, targets: list[Target], results: list[list[bytes]], settings: Settings
) -> list[Any]:
    """Every result as a new layer above its source, all in one undo group."""
    made = []
    host.undo_group_start(image)
    try:
        for t, images in zip(targets, results):
            for k, rgba in enumerate(images):
                layer = host.add_layer_above(
                    image, t.node, result_name(t.name, settings.kind, k, len(images))
                )
                host.write_rgba(layer, t.box, rgba)
                made.append(layer)
    finally:
        host.undo_group_end(image)
    host.flush()
    return made


def run(
    host: Host,
    image: Any,
    drawables: list[Any],
    settings: Settings,
    client: Client,
    cancel: threading.Event | None = None,
) -> list[Any]:
    targets = prepare(host, image, drawables, settings)
    n = len(targets)

    def on_progress(i: int, step: int, total: int) -> None:
        host.progress(
            (i + step / max(1, total)) / n, f"NoiseBrush: layer {i + 1} of {n}, step {step}/{total}"
        )

    results = run_jobs(client, settings, targets, on_progress, None, cancel)
    return apply(host, image, targets, results, settings)
