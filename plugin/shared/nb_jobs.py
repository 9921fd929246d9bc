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


class Stop:
    """The user's cancel for one run of jobs, pressed from any thread (a GUI's Cancel button).

    `set()` marks the run stopped and asks the server at once to cancel every job of the run that has not
    finished. Waiting for the job's next event instead left the server working for a whole step (19 s
    in Krita on a large image). It never blocks: the requests go out on a short-lived thread, so a GUI
    thread may call it.
    """

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._open: list[str] = []  # submitted, not yet finished

    def set(self) -> None:
        with self._lock:
            if self._flag.is_set():
                return
            self._flag.set()
            client, jobs = self._client, list(self._open)
        if client is not None and jobs:
            _cancel_soon(client, jobs)

    def is_set(self) -> bool:
        return self._flag.is_set()

    def follow(self, client: Client, job_id: str) -> None:
        """A job of this run was submitted; one submitted after `set()` (a race) is cancelled at once."""
        with self._lock:
            self._client = client
            self._open.append(job_id)
            late = self._flag.is_set()
        if late:
            _cancel_soon(client, [job_id])

    def finished(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._open:
                self._open.remove(job_id)


def _cancel_soon(client: Client, jobs: list[str]) -> None:
    def send() -> None:
        for job_id in jobs:
            try:
                client.cancel(job_id)
            except ServerError:  # gone or finished: nothing left to stop
                pass

    threading.Thread(target=send, name="noisebrush-cancel", daemon=True).start()


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
    cancel: Stop | None = None,
) -> list[list[bytes]]:
    """Submit every target (the server runs them in order), wait for each, return RGBA results per target.

    Pixels whose selection byte is 0 come back bit-identical to the source whatever the server did.
    Raises Cancelled, or ServerError with a message for the user; unfinished jobs are cancelled. Once
    `cancel` is set no more progress or previews are reported.
    """
    cancel = cancel or Stop()
    jobs: list[str] = []
    results: list[list[bytes]] = []
    try:
        for t in targets:
            if cancel.is_set():
                raise Cancelled()
            _, _, w, h = t.box
            image = nb_png.encode(w, h, 4, t.rgba)
            mask = nb_png.encode(w, h, 1, t.mask) if t.mask is not None else None
            jobs.append(client.submit(job_body(settings, image, mask))["id"])
            cancel.follow(client, jobs[-1])
        for i, (t, job_id) in enumerate(zip(targets, jobs)):

            def on_event(event: str, data: dict[str, Any], i: int = i, t: Target = t) -> None:
                if cancel.is_set():  # the user has moved on: a late step would look like a stuck run
                    return
                if event == "progress" and on_progress is not None:
                    on_progress(i, int(data.get("step", 0)), int(data.get("total", 0)))
                elif event == "preview" and on_preview is not None and settings.previews:
                    bx, by, bw, bh = data["box"]
                    w, h, c, px = nb_png.decode(base64.b64decode(data["png"]))
                    if (w, h) == (bw, bh):
                        on_preview(i, (t.box[0] + bx, t.box[1] + by, w, h), to_rgba(px, c))

            state = client.wait(job_id, on_event, cancel.is_set)
            cancel.finished(job_id)
            if state["status"] == "cancelled" or cancel.is_set():
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
