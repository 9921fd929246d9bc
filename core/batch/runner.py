"""The batch runner every surface calls: one request over many frames, each output written once, atomically
and in input order, a manifest to resume from, and a failing frame failing alone.

`run_batch(batch, executor)` plans (hash inputs, skip what the manifest says is done), hands the rest to an
executor (`in_process` here, `cluster.RayPool` on Ray), and writes what comes back: the driver is the only
writer, so a frame computed twice (a worker that died after finishing) is still written once.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
from PIL import Image

from noisebrush.core.batch.inputs import Frame, Masks, digest
from noisebrush.core.batch.manifest import Entry, Manifest, fingerprint, write_atomic
from noisebrush.core.engine.progress import Progress, ProgressCallback
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput, Cancelled

Request: TypeAlias = SDEditRequest | LeditsRequest
OPERATIONS = {"sdedit": (SDEditRequest, "guide"), "ledits": (LeditsRequest, "image")}


@dataclass(frozen=True)
class Job:
    frame: Frame
    request: Request


@dataclass(frozen=True)
class Outcome:
    index: int  # the frame's position in input order
    image: np.ndarray | None  # None: the frame failed
    reason: str = ""  # one line, when it failed


class Executor(Protocol):
    """Runs jobs and yields one Outcome per job (in any order; the runner puts them back in input order)."""

    def __call__(self, jobs: Iterable[Job]) -> Iterator[Outcome]: ...


@dataclass
class Batch:
    """One request over many frames. `fields` are the request's keyword arguments but its image and mask;
    with `shared_noise` every frame uses `seed` (static regions stay put), otherwise frame number n uses
    seed + n (independent noise, as separate runs would)."""

    frames: list[Frame]
    output: Path | None  # None: nothing is written, each result reaches `on_frame` (the Studio, the server)
    fields: dict[str, Any]
    operation: str = "sdedit"
    masks: Masks = field(default_factory=lambda: Masks(None))
    shared_noise: bool = False

    def request(self, frame: Frame, image: np.ndarray, mask: np.ndarray | None) -> Request:
        cls, image_field = OPERATIONS[self.operation]
        return cls(**{image_field: image, "mask": mask, **self.fields, "seed": self.seed(frame)})

    def seed(self, frame: Frame) -> int:
        base = int(self.fields.get("seed", 0))
        return base if self.shared_noise else base + frame.number

    def validate(self) -> None:
        """The request's fields, checked once before any frame runs (each frame's pixels are checked with it)."""
        if self.operation not in OPERATIONS:
            raise BadInput(f"unknown batch operation {self.operation!r}; allowed: {', '.join(OPERATIONS)}")
        if self.fields.get("variations", 1) != 1:
            raise BadInput("a batch makes one output per frame; variations must be 1")
        if (
            "seed" in self.fields
            and not 0 <= int(self.fields["seed"]) + max((f.number for f in self.frames), default=0) < 2**63
        ):
            raise BadInput("seed plus the highest frame number must stay below 2^63")
        # The probe frame takes the size of an image among the fields (a control image must match its frame).
        size = next((v.shape[:2] for v in self.fields.values() if isinstance(v, np.ndarray)), (8, 8))
        probe = Frame(0, "probe", 0, bytes, lambda _: np.zeros((*size, 3), np.uint8))
        self.request(probe, np.zeros((*size, 3), np.uint8), None).validate()
        from noisebrush.core.engine.sources import resolve_model

        resolve_model(
            str(self.fields.get("model", "default"))
        )  # a missing model fails the batch, not each frame

    def described(self) -> dict[str, Any]:
        """The request as the manifest records it (without the per-frame seed, which each entry holds)."""
        fields = {k: v for k, v in self.fields.items() if k != "seed"}
        return {
            "operation": self.operation,
            **fields,
            "seed": self.fields.get("seed", 0),
            "shared_noise": self.shared_noise,
        }


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    status: str  # "done", "skipped" or "failed"
    reason: str = ""
    path: Path | None = None  # where a done or skipped frame's output is (batches with an output folder)
    image: np.ndarray | None = None  # a frame made in this run


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (frame, one-line reason)
    outputs: list[Path] = field(default_factory=list)  # every output the batch now has, in input order

    def lines(self) -> list[str]:
        head = f"{len(self.done)} done, {len(self.skipped)} skipped (already done), {len(self.failed)} failed"
        return [head] + [f"failed {name}: {reason}" for name, reason in self.failed]


def output_name(frame: Frame) -> str:
    return f"{frame.name}.png"


def attempt(
    engine: Any,
    request: Request,
    should_stop: Callable[[], bool] | None = None,
    callback: ProgressCallback | None = None,
) -> tuple[np.ndarray | None, str]:
    """Run one frame: (image, "") or (None, one-line reason). Anything but a cancel fails this frame alone:
    a bad pixel format, a frame the memory budget refuses, even a bug met by one odd frame."""
    try:
        given = {"should_stop": should_stop, "callback": callback}
        hooks = {k: v for k, v in given.items() if v is not None}
        if isinstance(request, LeditsRequest):
            return engine.ledits(request, **hooks), ""
        return engine.sdedit(request, **hooks)[0], ""
    except (Cancelled, KeyboardInterrupt):
        raise
    except BadInput as e:
        return None, one_line(str(e))
    except Exception as e:
        return None, one_line(f"{type(e).__name__}: {e}")


def one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def in_process(
    engine: Any = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[Frame, Progress], None] | None = None,
) -> Executor:
    """Frames one after another on this machine's engine (made on first use: the model loads once).
    Once `should_stop()` says True the running frame stops and run_batch raises Cancelled; every frame
    written before stays done in the manifest. `on_step` hears each step of each frame (the Studio's
    progress and previews); raising Cancelled from it stops the batch too."""

    def run(jobs: Iterable[Job]) -> Iterator[Outcome]:
        nonlocal engine
        for job in jobs:
            if engine is None:
                from noisebrush.core.engine.engine import Engine

                engine = Engine()
            callback = None if on_step is None else partial(on_step, job.frame)
            image, reason = attempt(engine, job.request, should_stop, callback)
            yield Outcome(job.frame.index, image, reason)

    return run


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def run_batch(
    batch: Batch, executor: Executor, on_frame: Callable[[FrameResult], None] | None = None
) -> Summary:
    """Run `batch`, calling `on_frame` once per frame (skipped ones first, then in input order). With an
    output folder each result is written and recorded in its manifest; without one (`output` None) nothing is
    written or skipped and each result's pixels reach `on_frame` alone."""
    batch.validate()
    manifest = None
    if batch.output is not None:
        batch.output.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(batch.output)
    request = batch.described()
    key = fingerprint(request)
    summary = Summary()
    report = on_frame or (lambda _r: None)

    todo: list[Frame] = []
    for frame in batch.frames:
        if manifest is None or batch.output is None:
            todo.append(frame)
            continue
        try:
            entry = Entry(
                digest(frame.read(), frame.placement),
                batch.masks.hash(frame),
                key,
                batch.seed(frame),
                output_name(frame),
                "",
            )
        except (BadInput, OSError):  # unreadable now: it runs, and fails alone with the reason
            todo.append(frame)
            continue
        if manifest.done(frame.name, entry):
            summary.skipped.append(frame.name)
            report(FrameResult(frame, "skipped", path=batch.output / entry.output))
        else:
            todo.append(frame)

    pending: dict[int, Outcome] = {}  # outcomes that came back before an earlier frame's
    loaded: dict[int, tuple[str, str | None]] = {}  # input and mask hashes of what each job was made from

    def jobs() -> Iterator[Job]:
        for frame in todo:
            try:
                input_hash, image = frame.load()
                mask_hash = None if manifest is None else batch.masks.hash(frame)
                job = Job(frame, batch.request(frame, image, batch.masks.load(frame, image)))
                job.request.validate()
            except BadInput as e:
                pending[frame.index] = Outcome(frame.index, None, one_line(str(e)))
                continue
            except OSError as e:
                pending[frame.index] = Outcome(
                    frame.index, None, one_line(f"{e.strerror or e}: {e.filename}")
                )
                continue
            loaded[frame.index] = (input_hash, mask_hash)
            yield job

    by_index = {f.index: f for f in todo}
    order = iter(todo)
    waiting = next(order, None)

    def write_ready() -> None:
        nonlocal waiting
        while waiting is not None and waiting.index in pending:
            _finish(
                batch, manifest, key, request, waiting, pending.pop(waiting.index), loaded, summary, report
            )
            waiting = next(order, None)

    came_back: set[int] = set()
    for outcome in executor(jobs()):
        if outcome.index not in by_index or outcome.index in came_back:
            continue  # a duplicate (a retried frame whose first try came back too): written once
        came_back.add(outcome.index)
        pending[outcome.index] = outcome
        write_ready()
    write_ready()
    if batch.output is not None:
        summary.outputs = [
            batch.output / output_name(f)
            for f in batch.frames
            if f.name in summary.done or f.name in summary.skipped
        ]
    return summary


def _finish(
    batch: Batch,
    manifest: Manifest | None,
    key: str,
    request: dict[str, Any],
    frame: Frame,
    outcome: Outcome,
    loaded: dict[int, tuple[str, str | None]],
    summary: Summary,
    report: Callable[[FrameResult], None],
) -> None:
    if outcome.image is None:
        summary.failed.append((frame.name, outcome.reason))
        report(FrameResult(frame, "failed", outcome.reason))
        return
    if manifest is None or batch.output is None:
        summary.done.append(frame.name)
        report(FrameResult(frame, "done", image=outcome.image))
        return
    data = encode_png(outcome.image)
    input_hash, mask_hash = loaded[frame.index]
    entry = Entry(input_hash, mask_hash, key, batch.seed(frame), output_name(frame), digest(data))
    # Recorded first, then renamed into place: see manifest.py for why a kill between the two is safe.
    manifest.record(frame.name, entry, request)
    path = batch.output / entry.output
    write_atomic(path, data)
    summary.done.append(frame.name)
    report(FrameResult(frame, "done", path=path, image=outcome.image))
