"""A server job's state: its status, progress, results and event log, and its row in the journal.

Plain data, shared by the queue (jobs.py) that changes it and the routes (app.py) that read it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.server.journal import JobRecord

if TYPE_CHECKING:
    from noisebrush.core.server.batches import HeldBatch

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})

Request = SDEditRequest | LeditsRequest
Stop = Callable[[], bool] | None  # the engine asks it inside model blocks; True stops the run


class HeldRequest(Protocol):
    """A request kept as it arrived while its job waits (`wire.HeldBody`: PNG bytes, not arrays)."""

    def decode(self) -> Request:
        """The request to run, decoded now; raises BadInput if it no longer decodes."""
        ...


@dataclass
class Event:
    """One entry of a job's event log: `kind` is "progress", "preview" or "status"."""

    kind: str
    data: dict[str, Any]
    preview: np.ndarray | None = None  # RGB uint8 of data["box"], encoded only when someone reads it


@dataclass
class Job:
    id: str
    kind: str  # "sdedit" | "ledits" | "batch"
    inputs: Request | HeldRequest | HeldBatch | None  # None once the job has finished: inputs are released
    seq: int
    status: str = QUEUED
    step: int = 0
    total: int = 0
    stage: str = ""
    variation: int = 0
    error: str | None = None
    error_kind: str | None = None  # "bad_input" | "engine" | "lost"
    results: list[str | None] = field(default_factory=list)  # base64 PNG per variation; a batch's per frame
    frame: int = 0  # a batch: the frame (input order) running now
    frames: int = 0  # a batch: how many frames it has; 0 for other jobs
    frame_errors: list[str | None] = field(default_factory=list)  # a batch: why each frame failed, or None
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

    def record(self) -> JobRecord:
        """The journal's row for this job, without its results (decoding them is left to the caller)."""
        return JobRecord(
            self.id,
            self.kind,
            self.status,
            self.created,
            self.started,
            self.finished,
            self.error,
            self.error_kind,
            frame_errors=tuple(e or "" for e in self.frame_errors),
        )

    @classmethod
    def from_record(cls, rec: JobRecord) -> Job:
        """A journaled job, finished, whose event log is its final status alone."""
        job = cls(rec.id, rec.kind, None, seq=-1, status=rec.status, created=rec.created)
        job.started, job.finished, job.error, job.error_kind = (
            rec.started,
            rec.finished,
            rec.error,
            rec.error_kind,
        )
        job.results = [base64.b64encode(p).decode("ascii") if p else None for p in rec.results]
        if rec.kind == "batch":  # a failed frame is journaled as an empty PNG and its reason
            job.frames = max(len(rec.results), len(rec.frame_errors))
            errors = rec.frame_errors + ("",) * (job.frames - len(rec.frame_errors))
            job.frame_errors = [e or None for e in errors]
        job.events.append(Event("status", status_data(job)))
        return job


def status_data(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {"status": job.status}
    if job.error is not None:
        data["error"], data["error_kind"] = job.error, job.error_kind
    return data
