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
    from .nb_edit import Box, Settings, batch_body, job_body, keep_unselected, to_rgba
except ImportError:  # beside the GIMP plug-in script
    import nb_png  # type: ignore[no-redef]
    from nb_client import Client, ServerError  # type: ignore[no-redef]
    from nb_edit import (  # type: ignore[no-redef]
        Box,
        Settings,
        batch_body,
        job_body,
        keep_unselected,
        to_rgba,
    )


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
    """Submit the targets, wait, return RGBA results per target (one per variation).

    One target is one job; several are one batch job (the server's batch runner), or one per variation, and
    one per distinct selection mask where layers of different sizes or offsets see different parts of it.
    Pixels whose selection byte is 0 come back bit-identical to the source whatever the server did.
    Raises Cancelled, or ServerError with a message for the user (a layer that failed names itself);
    unfinished jobs are cancelled. Once `cancel` is set no more progress or previews are reported.
    """
    cancel = cancel or Stop()
    runs = _runs(settings, targets)
    jobs: list[str] = []
    results: list[list[bytes]] = [[] for _ in targets]
    waited = 0
    try:
        for _members, body in runs:
            if cancel.is_set():
                raise Cancelled()
            jobs.append(client.submit(body)["id"])
            cancel.follow(client, jobs[-1])
        for (members, _), job_id in zip(runs, jobs, strict=True):

            def on_event(event: str, data: dict[str, Any], members: list[int] = members) -> None:
                if cancel.is_set():  # the user has moved on: a late step would look like a stuck run
                    return
                i = members[int(data.get("frame", 0))]
                if event == "progress" and on_progress is not None:
                    on_progress(i, int(data.get("step", 0)), int(data.get("total", 0)))
                elif event == "preview" and on_preview is not None and settings.previews:
                    bx, by, bw, bh = data["box"]
                    w, h, c, px = nb_png.decode(base64.b64decode(data["png"]))
                    if (w, h) == (bw, bh):
                        box = targets[i].box
                        on_preview(i, (box[0] + bx, box[1] + by, w, h), to_rgba(px, c))

            state = client.wait(job_id, on_event, cancel.is_set)
            cancel.finished(job_id)
            waited += 1
            if state["status"] == "cancelled" or cancel.is_set():
                raise Cancelled()
            errors = state.get("frame_errors") or [None] * len(members)
            failed = next((k for k, why in enumerate(errors) if why), None)
            if state["status"] == "failed" or failed is not None:
                name = targets[members[failed or 0]].name
                why = errors[failed] if failed is not None else state.get("error")
                raise ServerError(f"{name}: {why or 'the job failed'}")
            images = state.get("images") or []
            if len(members) == 1:
                results[members[0]] += [decode_result(img, targets[members[0]]) for img in images]
            else:
                for i, img in zip(members, images, strict=True):
                    results[i].append(decode_result(img, targets[i]))
    except BaseException:
        for job_id in jobs[waited:]:
            try:
                client.cancel(job_id)
            except ServerError:
                pass
        raise
    return results


def _runs(settings: Settings, targets: list[Target]) -> list[tuple[list[int], dict[str, Any]]]:
    """(the targets a job carries, its body): one job for one target, else batch jobs of the targets that
    share a size and a selection mask (the server's batch takes one mask for all), one per variation, seeds
    seed, seed+1, ... as a job per layer gave its variations."""
    pngs = [nb_png.encode(t.box[2], t.box[3], 4, t.rgba) for t in targets]
    masks = [None if t.mask is None else nb_png.encode(t.box[2], t.box[3], 1, t.mask) for t in targets]
    if len(targets) == 1:
        return [([0], job_body(settings, pngs[0], masks[0]))]
    groups: dict[tuple[int, int, bytes | None], list[int]] = {}
    for i, t in enumerate(targets):
        groups.setdefault((t.box[2], t.box[3], t.mask), []).append(i)
    runs = []
    for v in range(max(1, int(settings.variations))):
        for members in groups.values():
            images = [pngs[i] for i in members]
            names = [targets[i].name for i in members]
            body = batch_body(settings, images, masks[members[0]], names, int(settings.seed) + v)
            runs.append((members, body))
    return runs


def decode_result(b64: str, t: Target) -> bytes:
    w, h, c, px = nb_png.decode(base64.b64decode(b64))
    if (w, h) != t.box[2:]:
        raise ServerError(f"{t.name}: the server sent {w}x{h} pixels for a {t.box[2]}x{t.box[3]} region")
    rgba = to_rgba(px, c)
    return rgba if t.mask is None else keep_unselected(t.rgba, rgba, t.mask)
