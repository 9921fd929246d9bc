"""The server's job queue: one worker thread runs jobs one at a time, in the order they came.

HTTP-free, so tests drive it directly. The Studio does not: it runs one job for one window and wants arrays
and Qt signals, not held PNGs and a journal (docs/ARCHITECTURE.md, "Three job runners"). Each job keeps a
short event log (progress, previews, the final status) that any number of readers follow by index.

Memory is bounded by what came in, not by what it decodes to: a waiting job holds its request as it
arrived (`HeldRequest`, e.g. PNG bytes) and decodes it just before it runs; a finished job drops its
inputs at once and keeps its results as PNG. With a `Journal`, every change of status is written to
disk, so a job outlives the process (see `recall`).
"""

from __future__ import annotations

import base64
import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from noisebrush.core.engine.images import encode_png
from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput, Cancelled
from noisebrush.core.server.job_state import (  # noqa: F401 - re-exported: the queue's words
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Event,
    HeldRequest,
    Job,
    Request,
    Stop,
    status_data,
)
from noisebrush.core.server.journal import LOST, Journal

if TYPE_CHECKING:
    from noisebrush.core.server.batches import BatchRunner, HeldBatch

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    """What the queue needs from `core.engine.Engine`; tests inject a fake."""

    def sdedit(
        self, req: SDEditRequest, callback: Callable[[Progress], None] | None = None, should_stop: Stop = None
    ) -> list[np.ndarray]: ...

    def ledits(
        self, req: LeditsRequest, callback: Callable[[Progress], None] | None = None, should_stop: Stop = None
    ) -> np.ndarray: ...


class QueueFull(Exception):
    """More jobs are waiting than the server accepts."""


class JobQueue:
    """FIFO of engine jobs with one worker thread. All public methods are thread-safe."""

    def __init__(
        self,
        engine_factory: Callable[[], EngineLike],
        *,
        max_queued: int = 64,
        keep_finished: int = 32,
        preview_interval: float = 0.5,
        encode: Callable[[np.ndarray], str] | None = None,
        journal: Journal | None = None,
        batches: BatchRunner | None = None,
    ) -> None:
        self._engine_factory = engine_factory
        self._batches = batches
        self._engine: EngineLike | None = None
        self._encode = encode or encode_png
        self._journal = journal
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
    def submit(self, kind: str, request: Request | HeldRequest | HeldBatch) -> Job:
        """Queue a run. Pass a `HeldRequest` to keep the inputs encoded until the job starts."""
        kinds = ("sdedit", "ledits", "batch") if self._batches is not None else ("sdedit", "ledits")
        if kind not in kinds:
            raise BadInput(f"unknown job kind {kind!r}; allowed: {', '.join(kinds)}")
        with self._cond:
            if self._stop:
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.max_queued:
                raise QueueFull(f"{len(self._pending)} jobs are already waiting (limit {self.max_queued})")
            job = Job(id=uuid.uuid4().hex, kind=kind, inputs=request, seq=next(self._seq))
            job.frames = len(getattr(request, "images", ())) if kind == "batch" else 0
            self._jobs[job.id] = job
            self._pending.append(job)
            self._emit(job, "status", {"status": QUEUED})
            self._forget_old()
            self._cond.notify_all()
        self._record(job)
        return job

    def get(self, job_id: str) -> Job | None:
        """A job this process still holds in memory (never touches the disk)."""
        with self._cond:
            return self._jobs.get(job_id)

    def find(self, job_id: str) -> Job | None:
        """A job in memory, else from the journal (finished, or lost in a restart). Blocks on disk:
        call it off the event loop."""
        job = self.get(job_id)
        if job is not None or self._journal is None:
            return job
        rec = self._journal.load(job_id)
        return None if rec is None else Job.from_record(rec)

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
        self._record(job)
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

    @property
    def stopping(self) -> bool:
        return self._stop

    def shutdown(self) -> None:
        """Take no more work and end every unfinished job now, as failed with error_kind "lost", so each
        open event stream gets a final status before the server exits; the running job's engine call
        stops at its next step. Not journaled: the next start reports these jobs lost."""
        with self._cond:
            self._stop = True
            for job in self._jobs.values():
                if not job.done:
                    job.cancel_requested = True
                    error = f"job {job.id} was stopped unfinished: the server is shutting down"
                    self._finish(job, FAILED, error=error, error_kind=LOST)
            self._pending.clear()
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Shut down and wait (at most `timeout` s) for the worker to leave the engine."""
        self.shutdown()
        self._worker.join(timeout)
        if self._journal is not None and not self._worker.is_alive():
            self._journal.close()
        if self._batches is not None and not self._worker.is_alive():
            self._batches.close()  # a Ray pool's actors, and the Ray it started

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
            self._record(job)
            self._execute(job)
            self._record(job)

    def _execute(self, job: Job) -> None:
        stop = partial(self._stopping, job)
        try:
            if self._engine is None:
                self._engine = self._engine_factory()
            callback = self._callback(job)
            if job.kind == "batch":
                assert self._batches is not None
                at_frame = partial(self._at_frame, job)
                held = cast("HeldBatch", job.inputs)
                results, errors = self._batches(held, self._engine, callback, at_frame, stop)
                self._finish_batch(job, results, errors)
                return
            request = _decode(cast("Request | HeldRequest | None", job.inputs))  # not a batch
            if job.kind == "sdedit":
                assert isinstance(request, SDEditRequest)
                images = list(self._engine.sdedit(request, callback, should_stop=stop))
            else:
                assert isinstance(request, LeditsRequest)
                images = [self._engine.ledits(request, callback, should_stop=stop)]
            del request  # the decoded inputs go now, before the results are encoded
            results = [self._encode(im) for im in images]
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
                job.results = results
                self._finish(job, SUCCEEDED)

    def _finish_batch(self, job: Job, results: list[str | None], errors: list[str | None]) -> None:
        with self._cond:
            job.frame_errors = errors
            if job.cancel_requested:
                self._finish(job, CANCELLED)
            elif not any(results):  # nothing came of it: the batch failed, each frame says why
                first = next((k, e) for k, e in enumerate(errors) if e)
                self._finish(job, FAILED, f"every frame failed; frame {first[0]}: {first[1]}", "bad_input")
            else:
                job.results = results
                self._finish(job, SUCCEEDED)

    def _at_frame(self, job: Job, frame: int, frames: int, finished: int) -> None:
        """A batch's frame `frame` starts (or, on Ray, has come back); `finished` frames are done."""
        if self._stopping(job):
            raise Cancelled()
        with self._cond:
            job.frame, job.frames = frame, frames
            data = {"frame": frame, "frames": frames, "finished": finished, "step": 0, "total": job.total}
            self._emit(job, "progress", data)

    def _stopping(self, job: Job) -> bool:
        """Should the running job stop now? (cancelled by its client, or the server is going away)"""
        return job.cancel_requested or self._stop

    def _callback(self, job: Job) -> Callable[[Progress], None]:
        def on_step(p: Progress) -> None:
            if self._stopping(job):
                raise Cancelled()
            data = {
                "step": p.step,
                "total": p.total,
                "variation": p.variation,
                "stage": p.stage,
                "box": list(p.box),
            }
            if job.frames:
                data.update(frame=job.frame, frames=job.frames)
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
            if self._stopping(job):
                raise Cancelled()

        return on_step

    def _record(self, job: Job) -> None:
        """Journal the job's state; call without holding self._cond (this waits on the disk)."""
        if self._journal is None:
            return
        with self._cond:
            if job.error_kind == LOST:  # ended by a shutdown: the next start reports it lost
                return
            rec, results = job.record(), list(job.results)
        self._journal.record(replace(rec, results=tuple(base64.b64decode(r) if r else b"" for r in results)))

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
        if job.done:  # a shutdown ended it first; the worker's late word changes nothing
            return
        job.status, job.finished = status, time.time()
        job.error, job.error_kind = error, error_kind
        job.inputs = None  # a waiting 4096x4096 job's images go now, not when it is forgotten
        self._emit(job, "status", status_data(job))

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]


def _decode(inputs: Request | HeldRequest | None) -> Request:
    if inputs is None:
        raise BadInput("this job's inputs were already released")
    if isinstance(inputs, SDEditRequest | LeditsRequest):
        return inputs
    return inputs.decode()
