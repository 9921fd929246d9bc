"""Run one generation's jobs on the server: submit every target, follow each, decode the results.

Shared by the Krita and GIMP plugins: it lives once in plugin/shared, and `noisebrush install-plugin`
copies it into each plugin so the installed plugin stands alone. No host calls here, so it may run on any
thread.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:  # inside the Krita package
    from . import nb_png
    from .nb_client import Client, ServerError
    from .nb_edit import Box, Settings, job_body, keep_unselected, to_rgba
except ImportError:  # beside the GIMP plug-in script
    import nb_png  # type: ignore[no-redef]
    from nb_client import Client, ServerError  # type: ignore[no-redef]
    from nb_edit import Box, Settings, job_body, keep_unselected, to_rgba  # type: ignore[no-redef]


class Cancelled(Exception):
    """The user stopped the run; nothing was written."""


@dataclass
class Target:
    """One source layer: the box sent (in the layer's pixels), its RGBA pixels and the selection inside it."""

    node: Any
    name: str
    box: Box
    rgba: bytes
    mask: bytes | None  # one byte per pixel of box; None = the whole box may change


ProgressFn = Callable[[int, int, int], None]  # (target index, step, total)
PreviewFn = Callable[[int, Box, bytes], None]  # (target index, box in layer pixels, RGBA bytes)


def run_jobs(
    client: Client,
    settings: Settings,
    targets: list[Target],
    on_progress: ProgressFn | None = None,
    on_preview: PreviewFn | None = None,
    cancel: threading.Event | None = None,
) -> list[list[bytes]]:
    """Submit every target (the server runs them in order), wait for each, return RGBA results per target.

    Pixels whose selection byte is 0 come back bit-identical to the source whatever the server did.
    Raises Cancelled, or ServerError with a message for the user; unfinished jobs are cancelled.
    """
    cancel = cancel or threading.Event()
    jobs: list[str] = []
    results: list[list[bytes]] = []
    try:
        for t in targets:
            _, _, w, h = t.box
            image = nb_png.encode(w, h, 4, t.rgba)
            mask = nb_png.encode(w, h, 1, t.mask) if t.mask is not None else None
            jobs.append(client.submit(job_body(settings, image, mask))["id"])
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
            results.append([decode_result(img, t) for img in state.get("images") or []])
    except BaseException:
        for job_id in jobs[len(results) :]:
            try:
                client.cancel(job_id)
            except ServerError:
                pass
        raise
    return results


def decode_result(b64: str, t: Target) -> bytes:
    w, h, c, px = nb_png.decode(base64.b64decode(b64))
    if (w, h) != t.box[2:]:
        raise ServerError(f"{t.name}: the server sent {w}x{h} pixels for a {t.box[2]}x{t.box[3]} region")
    rgba = to_rgba(px, c)
    return rgba if t.mask is None else keep_unselected(t.rgba, rgba, t.mask)
