"""An edit (SDEdit or LEDITS) of every selected layer as one batch through the runner the command line and the
server use (`core.batch.runner.run_batch`): each layer is a frame with its own image and selection mask, and a
layer the engine refuses fails alone while the others still get their results.

The runner makes one output per frame, so SDEdit's variations run the batch once per variation with base
seed + v, the seeds the engine's own variations use; stepping through them works as for a single layer."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from noisebrush.core.batch.inputs import Frame, Masks, frames_of
from noisebrush.core.batch.runner import OPERATIONS, Batch, FrameResult, in_process, run_batch
from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput

from .engines import EngineHolder
from .targets import Target
from .worker import EngineWorker, JobFn


@dataclass
class LayerResult:
    """What one layer of the batch came to: one image per variation, or the reason it failed."""

    images: list[np.ndarray] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)  # the seed each image was made with
    reason: str = ""  # one line when the layer failed (then it has no images)


def frame_names(targets: list[Target]) -> list[str]:
    """The layers' names as frame names, which must be distinct: when two layers share a name, every name
    gets its position in front."""
    names = [t.source.name for t in targets]
    if len(set(names)) == len(names):
        return names
    return [f"{i + 1}: {n}" for i, n in enumerate(names)]


def layer_batch(targets: list[Target], request: SDEditRequest | LeditsRequest, shared_noise: bool) -> Batch:
    """One run (one variation) of `request` over the targets' layers: the operation is the request's kind, its
    image (an SDEdit guide, a LEDITS image) and mask are each target's, every other field is shared."""
    operation = next(op for op, (cls, _) in OPERATIONS.items() if isinstance(request, cls))
    per_frame = (OPERATIONS[operation][1], "mask")  # what each layer brings
    frames = frames_of(list(zip(frame_names(targets), (t.guide for t in targets), strict=True)))
    shared = {f.name: getattr(request, f.name) for f in fields(request) if f.name not in per_frame}
    if "variations" in shared:  # the runner makes one output per frame (see batch_job)
        shared["variations"] = 1
    return Batch(
        frames,
        None,
        shared,
        operation=operation,
        masks=Masks(None, images=[t.mask for t in targets]),
        shared_noise=shared_noise,
    )


def batch_job(engines: EngineHolder, batch: Batch, variations: int) -> JobFn:
    """The worker's job: `variations` runs of `batch` (seed, seed + 1, ...), one LayerResult per frame. A
    layer that fails in one variation fails (it is left out of the later ones); a cancel raises Cancelled at
    once through the worker's callback and should_stop, and nothing reaches the document."""
    seed = int(batch.fields["seed"])

    def job(worker: EngineWorker) -> list[LayerResult]:
        engine = engines.get()
        if not hasattr(engine, batch.operation):  # else every layer would fail alone with the same reason
            raise BadInput(f"this engine has no {batch.operation} support yet")

        def on_step(frame: Frame, p: Progress) -> None:
            worker.tag = frame.index  # "layer 2 of 3" in the status bar; previews go to that layer
            worker.callback(p)

        executor = in_process(engine, worker.should_stop, on_step)
        results = [LayerResult() for _ in batch.frames]
        for v in range(variations):
            worker.check_cancel()
            run = replace(
                batch,
                frames=[f for f in batch.frames if not results[f.index].reason],
                fields={**batch.fields, "seed": seed + v},
            )
            if not run.frames:
                break

            def record(r: FrameResult, run: Batch = run) -> None:
                result = results[r.frame.index]
                if r.status == "done" and r.image is not None:
                    result.images.append(r.image)
                    result.seeds.append(run.seed(r.frame))
                else:
                    result.images, result.seeds = [], []
                    result.reason = r.reason or "no image came back"

            run_batch(run, executor, record)
        engines.mark_warm(str(batch.fields["model"]), str(batch.fields["device"]))
        return results

    return job


def failures(targets: list[Target], results: list[LayerResult]) -> list[str]:
    """'layer name: reason' for each layer that failed, in layer order (for the status bar or a dialog)."""
    return [f"{t.source.name}: {r.reason}" for t, r in zip(targets, results, strict=True) if r.reason]
