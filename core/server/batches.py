"""Batch jobs on the server: one request over many frames, run by the batch runner the CLI and the Studio use
(`core.batch.runner.run_batch`), on the server's engine or on a Ray cluster (`noisebrush serve --ray`).

A waiting batch holds its frames as the PNG bytes they came in (`HeldBatch`); a running one decodes one frame
at a time, right before that frame runs, and keeps each result as PNG once it is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from pydantic import BaseModel

from noisebrush.core.batch.inputs import Frame, Masks
from noisebrush.core.batch.runner import OPERATIONS, Batch, Executor, FrameResult, in_process, run_batch
from noisebrush.core.engine import budget
from noisebrush.core.engine.images import encode_png
from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import excerpt
from noisebrush.core.errors import BadInput
from noisebrush.core.server import wire

BATCH_KEYS = {"kind", "operation", "images", "names", "shared_noise"}  # the batch's own, not the request's
# (frame index, frames, frames finished): a frame starts (in this process) or came back; raises Cancelled to stop
AtFrame = Callable[[int, int, int], None]


@dataclasses.dataclass(frozen=True)
class HeldBatch:
    """A validated batch body with its frames and mask kept as PNG bytes while the job waits."""

    body: BaseModel  # the body with its images and mask emptied
    images: tuple[bytes, ...]
    names: tuple[str, ...]
    mask: bytes | None
    max_pixels: int

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.images) + len(self.mask or b"")

    def batch(self, checks_only: bool = False) -> Batch:
        """The runner's Batch. Frames decode lazily, one as it runs; `checks_only` reads them from their PNG
        headers alone (wire.decode_png's `header_only`), for the checks at submit."""
        op = self.body.operation  # type: ignore[attr-defined]
        image_field = OPERATIONS[op][1]
        values = self.body.model_dump(exclude=BATCH_KEYS | {"mask"})
        single = (wire.SDEditJob if op == "sdedit" else wire.LeditsJob).model_validate(
            {**values, "kind": op, image_field: encode_png(np.zeros((8, 8, 3), np.uint8))}
        )
        # The request's fields as a single job's are built (model checks, LoRA paths, concepts), less its image.
        _, request = wire.to_request(single, self.max_pixels, checks_only=True)
        fields = {
            f.name: getattr(request, f.name)
            for f in dataclasses.fields(request)
            if f.name not in (image_field, "mask")
        }
        mask = None
        if self.mask is not None:
            mask = wire.decode_png_bytes(self.mask, "mask", self.max_pixels, mask=True)
        frames = [
            Frame(k, name, k, partial(_same, png), partial(_decode, f"image {k} ({name})", self, checks_only))
            for k, (name, png) in enumerate(zip(self.names, self.images, strict=True))
        ]
        shared = bool(self.body.shared_noise)  # type: ignore[attr-defined]
        return Batch(frames, None, fields, op, masks=Masks(None, image=mask), shared_noise=shared)


def _same(png: bytes) -> bytes:
    return png


def _decode(what: str, held: HeldBatch, checks_only: bool, png: bytes) -> np.ndarray:
    return wire.decode_png_bytes(png, what, held.max_pixels, header_only=checks_only)


def hold(body: BaseModel, max_pixels: int, max_frames: int) -> HeldBatch:
    """`body`'s frames as PNG bytes, their count within `max_frames` (TooLarge, answered 413)."""
    images: list[str] = body.images  # type: ignore[attr-defined]
    if len(images) > max_frames:
        raise wire.TooLarge(
            f"a batch of {len(images)} images; this server takes at most {max_frames} per batch "
            "(noisebrush serve --max-frames)"
        )
    names: list[str] | None = body.names  # type: ignore[attr-defined]
    if names is None:
        names = [f"frame{k}" for k in range(len(images))]
    elif len(names) != len(images):
        raise BadInput(f"names has {len(names)} entries for {len(images)} images; give one name per image")
    pngs = tuple(wire.b64_bytes(data, f"image {k}") for k, data in enumerate(images))
    mask: str | None = body.mask  # type: ignore[attr-defined]
    mask_png = None if mask is None else wire.b64_bytes(mask, "mask")
    return HeldBatch(
        body.model_copy(update={"images": [], "mask": None}),
        pngs,
        tuple(excerpt(n) for n in names),
        mask_png,
        max_pixels,
    )


def check(held: HeldBatch, models: list[dict[str, Any]], memory_budget: int | None) -> None:
    """Refuse at submit what no frame could run: the request's fields, the model, and each frame's pixels
    against the mask and the memory budget (each frame alone must fit: frames run one after another)."""
    batch = held.batch(checks_only=True)
    first = batch.frames[0]
    wire.check_model(batch.request(first, first.load()[1], None), models)  # before any path is opened
    batch.validate()
    for frame in batch.frames:
        try:
            _, image = frame.load()
            request = batch.request(frame, image, batch.masks.load(frame, image))
            request.validate()
            budget.check(request, memory_budget)
        except BadInput as exc:
            raise BadInput(f"frame {frame.index} ({frame.name}): {exc}") from None
        except wire.TooLarge as exc:
            raise wire.TooLarge(f"frame {frame.index} ({frame.name}): {exc}") from None


class BatchRunner:
    """Runs the server's batch jobs: in this process on the server's engine, or with `ray` (an address, or
    "auto") on a pool of Ray actors made at the first batch and kept while the server runs. Ray is imported
    only then."""

    def __init__(self, ray: str | None = None, encode: Callable[[np.ndarray], str] = encode_png) -> None:
        self.ray, self.encode = ray, encode
        self._pool: Any = None

    def __call__(
        self,
        held: HeldBatch,
        engine: Any,
        on_step: Callable[[Progress], None],
        at_frame: AtFrame,
        should_stop: Callable[[], bool],
    ) -> tuple[list[str | None], list[str | None]]:
        """Run `held`; (each frame's PNG or None, each frame's failure or None), in input order. Raises
        Cancelled once `at_frame` or `on_step` does, BadInput when the batch as a whole cannot run."""
        n = len(held.images)
        results: list[str | None] = [None] * n
        errors: list[str | None] = [None] * n
        finished = 0
        running = -1

        def on_step_of(frame: Frame, p: Progress) -> None:
            nonlocal running
            if frame.index != running:  # its first step: say which frame runs now
                running = frame.index
                at_frame(running, n, finished)
            on_step(p)

        def on_frame(r: FrameResult) -> None:
            nonlocal finished
            finished += 1
            if r.image is not None:
                results[r.frame.index] = self.encode(r.image)
            else:
                errors[r.frame.index] = r.reason or "failed"
            at_frame(r.frame.index, n, finished)

        executor = self._executor(engine, on_step_of, should_stop)
        try:
            run_batch(held.batch(), executor, on_frame)
        except BaseException:
            if self._pool is not None:
                _drain(self._pool)
            raise
        return results, errors

    def _executor(
        self, engine: Any, on_step: Callable[[Frame, Progress], None], should_stop: Callable[[], bool]
    ) -> Executor:
        if self.ray is None:
            return in_process(engine, should_stop, on_step=on_step)
        if self._pool is None:
            from noisebrush.core.batch.cluster import RayPool

            self._pool = RayPool(address=self.ray)
        return self._pool  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _drain(pool: Any) -> None:
    """Collect what a stopped batch left in flight on the actors, so the next batch gets only its own
    frames back (Ray's ActorPool hands results back in the order they were submitted)."""
    while pool.pool.has_next():
        try:
            pool.pool.get_next()
        except Exception:  # noqa: BLE001 - a frame of a batch nobody waits for any more
            continue
