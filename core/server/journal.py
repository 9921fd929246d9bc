"""The server's job journal: one SQLite file (WAL) that outlives the process.

Each job's id, kind, status, times and error are written on every change of status, and a finished
job's result PNGs for a retention period, so a client that comes back after a restart still gets its
result, or learns that its job was lost, instead of a bare 404. Only the standard library's sqlite3.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from noisebrush.core.errors import BadInput

LOST = "lost"  # error_kind of a job that was queued or running when the server went away
FINISHED = ("succeeded", "failed", "cancelled")

# A status only moves forward: a late write from a slower thread must not undo a newer one.
_RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    rank INTEGER NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    error_kind TEXT,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    png BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS frame_errors (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished);
"""


@dataclass(frozen=True)
class JobRecord:
    """A job as the journal keeps it; `results` are raw PNG bytes, one per variation, or for a batch one
    per frame (empty for a frame that failed, `frame_errors` saying why; "" where a frame succeeded)."""

    id: str
    kind: str
    status: str
    created: float
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    error_kind: str | None = None
    results: tuple[bytes, ...] = ()
    frame_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retention:
    """How long and how much of the finished jobs the journal keeps; the oldest go first."""

    seconds: float = 24 * 3600.0
    jobs: int = 1000
    bytes: int = 1024 * 1024 * 1024


def lost_message(job_id: str) -> str:
    return f"job {job_id} was lost when the server restarted; submit it again"


class Journal:
    """Thread-safe: one connection behind a lock. Every call blocks on disk, so call it from worker
    threads (the job worker, FastAPI's thread pool), never from the event loop."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps the file whole on a crash
            self._db.executescript(_SCHEMA)
            self._mark_lost()
            self._prune(time.time())
        except (OSError, sqlite3.Error) as exc:
            raise BadInput(
                f"cannot open the job journal {path}: {exc}; choose a writable folder with --state-dir"
            ) from None

    def record(self, rec: JobRecord) -> None:
        """Write a job's state (and, once it succeeded, its results); prune when it finished."""
        size = sum(len(p) for p in rec.results)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                """INSERT INTO jobs (id, kind, status, rank, created, started, finished, error, error_kind, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, rank = excluded.rank,
                    started = excluded.started, finished = excluded.finished, error = excluded.error,
                    error_kind = excluded.error_kind, bytes = excluded.bytes
                WHERE excluded.rank >= jobs.rank""",
                (
                    rec.id,
                    rec.kind,
                    rec.status,
                    _RANK[rec.status],
                    rec.created,
                    rec.started,
                    rec.finished,
                    rec.error,
                    rec.error_kind,
                    size,
                ),
            )
            if cur.rowcount and rec.results:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results (job_id, idx, png) VALUES (?, ?, ?)",
                    [(rec.id, i, png) for i, png in enumerate(rec.results)],
                )
            if cur.rowcount and any(rec.frame_errors):
                self._db.executemany(
                    "INSERT OR REPLACE INTO frame_errors (job_id, idx, reason) VALUES (?, ?, ?)",
                    [(rec.id, i, why) for i, why in enumerate(rec.frame_errors) if why],
                )
            if rec.status in FINISHED:
                self._prune(time.time())

    def load(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, status, created, started, finished, error, error_kind FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            pngs = self._db.execute(
                "SELECT png FROM results WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
            reasons = dict(
                self._db.execute(
                    "SELECT idx, reason FROM frame_errors WHERE job_id = ?", (job_id,)
                ).fetchall()
            )
        job_id, kind, status, created, started, finished, error, error_kind = row
        results = tuple(bytes(p) for (p,) in pngs)
        count = max(len(results), max(reasons, default=-1) + 1)
        errors = tuple(reasons.get(i, "") for i in range(count)) if reasons else ()
        return JobRecord(job_id, kind, status, created, started, finished, error, error_kind, results, errors)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- helpers (hold self._lock) ----------------------------------------------------------------
    def _mark_lost(self) -> None:
        """Jobs still queued or running in the file belong to a server that is gone."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            for (job_id,) in self._db.execute("SELECT id FROM jobs WHERE rank < 2").fetchall():
                self._db.execute(
                    "UPDATE jobs SET status = 'failed', rank = 2, finished = ?, error = ?, error_kind = ? "
                    "WHERE id = ?",
                    (now, lost_message(job_id), LOST, job_id),
                )

    def _prune(self, now: float) -> None:
        keep = self.retention
        old = self._db.execute(
            "SELECT id FROM jobs WHERE rank = 2 AND finished < ?", (now - keep.seconds,)
        ).fetchall()
        beyond_count = self._db.execute(
            "SELECT id FROM jobs WHERE rank = 2 ORDER BY finished DESC LIMIT -1 OFFSET ?", (keep.jobs,)
        ).fetchall()
        total, beyond_bytes = 0, []
        for job_id, size in self._db.execute(
            "SELECT id, bytes FROM jobs WHERE bytes > 0 ORDER BY finished DESC"
        ).fetchall():
            total += size
            if total > keep.bytes:
                beyond_bytes.append((job_id,))
        gone = {*old, *beyond_count, *beyond_bytes}
        if gone:
            self._db.executemany("DELETE FROM jobs WHERE id = ?", gone)
            self._db.executemany("DELETE FROM results WHERE job_id = ?", gone)
            self._db.executemany("DELETE FROM frame_errors WHERE job_id = ?", gone)
