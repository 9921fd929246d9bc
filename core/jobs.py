"""The server's job queue: one worker thread runs jobs one at a time, in the order they came.

Qt-free and HTTP-free, so the desktop app or a test can drive it directly. Each job keeps a short
event log (progress, previews, the final status) that any number of readers follow by index.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .errors import BadInput, Cancelled
from .progress import Progress
from .requests import LeditsRequest, SDEditRequest

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})

Request = SDEditRequest | LeditsRequest


class EngineLike(Protocol):
    """What the queue needs from `core.engine.Engine`; tests inject a fake."""

    def sdedit(
        self, req: SDEditRequest, callback: Callable[[Progress], None] | None = None
    ) -> list[np.ndarray]: ...

    def ledits(
        self, req: LeditsRequest, callback: Callable[[Progress], None] | None = None
    ) -> np.ndarray: ...


class QueueFull(Exception):
    """More jobs are waiting than the server accepts."""


@dataclass
class Event:
    """One entry of a job's event log: `kind` is "progress", "preview" or "status"."""

    kind: str
    data: dict[str, Any]
    preview: np.ndarray | None = None  # RGB uint8 of data["box"], encoded only when someone reads it


@dataclass
class Job:
    id: str
    kind: str  # "sdedit" | "ledits"
    request: Request
    seq: int
    status: str = QUEUED
    step: int = 0
    total: int = 0
    stage: str = ""
    variation: int = 0
    error: str | None = None
    error_kind: str | None = None  # "bad_input" | "engine"
    results: list[np.ndarray] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    events: list[Event] = field(default_factory=list)
    cancel_requested: bool = False
    listeners: int = 0  # open event streams; previews are rendered only while someone watches
    last_preview: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in FINISHED


class JobQueue:
    """FIFO of engine jobs with one worker thread. All public methods are thread-safe."""

    def __init__(
        self,
        engine_factory: Callable[[], EngineLike],
        *,
        max_queued: int = 64,
        keep_finished: int = 32,
        preview_interval: float = 0.5,
    ) -> None:
        self._engine_factory = engine_factory
        self._engine: EngineLike | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending: list[Job] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stop = False
        self.max_queued = max_queued
        self.keep_finished = keep_finished
        self.preview_interval = preview_interval
        self._worker = threading.Thread(target=self._run, name="noisebrush-jobs", daemon=True)
        self._worker.start()

    # -- public API -------------------------------------------------------------------------------
    def submit(self, kind: str, request: Request) -> Job:
        if kind not in ("sdedit", "ledits"):
            raise BadInput(f"unknown job kind {kind!r}; allowed: sdedit, ledits")
        with self._cond:
            if len(self._pending) >= self.max_queued:
                raise QueueFull(f"{len(self._pending)} jobs are already waiting (limit {self.max_queued})")
            job = Job(id=uuid.uuid4().hex, kind=kind, request=request, seq=next(self._seq))
            self._jobs[job.id] = job
            self._pending.append(job)
            self._emit(job, "status", {"status": QUEUED})
            self._forget_old()
            self._cond.notify_all()
            return job

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job still remembered, oldest first."""
        with self._cond:
            return list(self._jobs.values())

    def position(self, job: Job) -> int | None:
        """0-based place in the waiting line, None once the job has started."""
        with self._cond:
            try:
                return self._pending.index(job)
            except ValueError:
                return None

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting job at once, or ask a running one to stop at its next step."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return job
            job.cancel_requested = True
            if job.status == QUEUED:
                self._pending.remove(job)
                self._finish(job, CANCELLED)
            self._cond.notify_all()
            return job

    def events_since(self, job: Job, index: int) -> tuple[list[Event], bool]:
        """Events from `index` on, and whether the job has finished (no more will come)."""
        with self._cond:
            return job.events[index:], job.done

    def wait(self, job: Job, index: int, timeout: float) -> None:
        """Block until the job has more than `index` events, or `timeout` seconds pass."""
        with self._cond:
            self._cond.wait_for(lambda: len(job.events) > index or job.done, timeout)

    def watch(self, job: Job, delta: int) -> None:
        with self._cond:
            job.listeners = max(0, job.listeners + delta)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the worker."""
        with self._cond:
            self._stop = True
            for job in list(self._jobs.values()):
                if not job.done:
                    job.cancel_requested = True
                    if job.status == QUEUED:
                        self._finish(job, CANCELLED)
            self._pending.clear()
            self._cond.notify_all()
        self._worker.join(timeout)

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or bool(self._pending))
                if self._stop:
                    return
                job = self._pending.pop(0)
                job.status, job.started = RUNNING, time.time()
                self._emit(job, "status", {"status": RUNNING})
            self._execute(job)

    def _execute(self, job: Job) -> None:
        try:
            if self._engine is None:
                self._engine = self._engine_factory()
            callback = self._callback(job)
            if job.kind == "sdedit":
                assert isinstance(job.request, SDEditRequest)
                results = list(self._engine.sdedit(job.request, callback=callback))
            else:
                assert isinstance(job.request, LeditsRequest)
                results = [self._engine.ledits(job.request, callback=callback)]
        except Cancelled:
            with self._cond:
                self._finish(job, CANCELLED)
            return
        except BadInput as exc:
            with self._cond:
                self._finish(job, FAILED, error=str(exc), error_kind="bad_input")
            return
        except Exception as exc:  # an engine failure fails this job; the server keeps serving
            log.exception("job %s failed", job.id)
            with self._cond:
                self._finish(job, FAILED, error=f"{type(exc).__name__}: {exc}", error_kind="engine")
            return
        with self._cond:
            if job.cancel_requested:
                self._finish(job, CANCELLED)
            else:
                job.results = [np.ascontiguousarray(r) for r in results]
                self._finish(job, SUCCEEDED)

    def _callback(self, job: Job) -> Callable[[Progress], None]:
        def on_step(p: Progress) -> None:
            if job.cancel_requested or self._stop:
                raise Cancelled()
            data = {
                "step": p.step,
                "total": p.total,
                "variation": p.variation,
                "stage": p.stage,
                "box": list(p.box),
            }
            now = time.monotonic()
            preview = None
            if job.listeners > 0 and now - job.last_preview >= self.preview_interval:
                preview = p.preview()
                if preview is not None:
                    job.last_preview = now
            with self._cond:
                job.step, job.total, job.stage, job.variation = p.step, p.total, p.stage, p.variation
                self._emit(job, "progress", data)
                if preview is not None:
                    self._emit(job, "preview", data, preview=np.ascontiguousarray(preview))
            if job.cancel_requested:
                raise Cancelled()

        return on_step

    # -- helpers (hold self._cond) ----------------------------------------------------------------
    def _emit(self, job: Job, kind: str, data: dict[str, Any], preview: np.ndarray | None = None) -> None:
        if kind == "preview":
            # Keep only the newest preview: a slow reader should not hold every frame in memory.
            for ev in job.events:
                if ev.kind == "preview":
                    ev.preview = None
        job.events.append(Event(kind, data, preview))
        self._cond.notify_all()

    def _finish(self, job: Job, status: str, error: str | None = None, error_kind: str | None = None) -> None:
        job.status, job.finished = status, time.time()
        job.error, job.error_kind = error, error_kind
        data: dict[str, Any] = {"status": status}
        if error is not None:
            data["error"] = error
        self._emit(job, "status", data)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]
