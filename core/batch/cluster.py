"""Frames on a Ray cluster: a pool of actors (`ray.util.ActorPool`), each loading the model once and holding
one GPU where the cluster has them. Ray restarts an actor that dies and retries its frame there
(`max_restarts`, `max_task_retries`); a frame whose actor is gone for good goes to another actor of the pool.
The driver (runner.py) writes every output, so a frame computed twice is still written once.

Imported only when the user asks for Ray: `ray` is the optional extra `noisebrush[cluster]`.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from noisebrush.core.batch.runner import Job, Outcome, Request, attempt
from noisebrush.core.errors import BadInput

# How often Ray restarts a dead actor (and retries its frame on it) before the pool gives up on that actor.
RESTARTS = 3
# How many times one frame is sent to another actor after its own actor is gone for good.
RESUBMITS = 2


class Worker:
    """One Ray actor: an engine whose priors stay loaded between frames."""

    def __init__(self, threads: int) -> None:
        import torch

        from noisebrush.core.engine.engine import Engine

        torch.set_num_threads(threads)  # the CPUs Ray reserved for this actor, no more
        self.engine = Engine()

    def warm(self, model: str, device: str) -> tuple[int, str]:
        """Load the model now, so the first frame is not slower than the rest; returns the actor's pid and
        the Ray node it runs on."""
        import ray

        self.engine.prior(model, device)
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def run(self, index: int, request: Request) -> tuple[Outcome, int]:
        image, reason = attempt(self.engine, request)
        return Outcome(index, image, reason), os.getpid()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadInput(
            "--ray needs Ray: pip install 'noisebrush[cluster]' (or pip install 'ray[default]')"
        ) from None
    return ray


class RayPool:
    """An executor for `run_batch` over `workers` Ray actors. `address`: "auto" starts or joins a Ray on this
    machine; anything else is a cluster's address (ray://host:10001 or host:6379). When Ray is already
    initialised in this process (a test's cluster, an application's own), the pool uses that connection."""

    def __init__(
        self,
        address: str = "auto",
        workers: int | None = None,
        worker_cpus: int = 1,
        model: str = "default",
        device: str = "auto",
        start_timeout: float = 600,
    ) -> None:
        ray = _ray()
        self._ray = ray
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            try:
                ray.init(
                    address=None if address == "auto" else address,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    configure_logging=True,
                )
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise BadInput(
                    f"cannot reach a Ray cluster at {address}: {' '.join(str(e).split())}"
                ) from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        if worker_cpus < 1:
            raise BadInput(f"--worker-cpus must be at least 1, got {worker_cpus}")
        count = workers or (gpus if gpus else max(1, cpus // worker_cpus))
        if count < 1:
            raise BadInput(f"--workers must be at least 1, got {count}")
        actor = ray.remote(
            num_cpus=worker_cpus,
            num_gpus=1 if gpus else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
        )(Worker)
        self.actors = [actor.remote(worker_cpus) for _ in range(count)]
        try:
            placed = ray.get([a.warm.remote(model, device) for a in self.actors], timeout=start_timeout)
        except ray.exceptions.RayTaskError as e:  # the model did not load on a worker: no frame could run
            self.close()
            raise BadInput(f"a Ray worker could not load the model: {_cause(e)}") from None
        except ray.exceptions.GetTimeoutError:  # the cluster has no room for them (CPUs or GPUs all held)
            self.close()
            raise BadInput(
                f"{count} Ray workers did not start within {start_timeout:g} s; the cluster has "
                f"{ray.available_resources()} free; ask for fewer with --workers"
            ) from None
        self.pids = [pid for pid, _ in placed]
        self.nodes = [node for _, node in placed]
        from ray.util.actor_pool import ActorPool

        self.pool = ActorPool(self.actors)
        self.live = count
        self.frame_pids: dict[int, int] = {}  # frame index -> pid of the actor that made it (tests use it)

    def __call__(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        ray = self._ray
        queue: deque[Job] = deque()  # in submission order, which is the order get_next returns
        resubmits: dict[int, int] = {}
        source = iter(jobs)
        window = 2 * len(
            self.actors
        )  # frames in flight: every actor busy, one more ready each; memory bounded
        exhausted = False
        while True:
            while not exhausted and len(queue) < window:
                job = next(source, None)
                if job is None:
                    exhausted = True
                else:
                    self._submit(job, queue)
            if not queue:
                return
            job = queue.popleft()
            index = job.frame.index
            try:
                outcome, pid = self.pool.get_next()
            except ray.exceptions.ActorDiedError as e:  # restarts used up; the pool has dropped that actor
                self.live -= 1
                resubmits[index] = resubmits.get(index, 0) + 1
                if self.live > 0 and resubmits[index] <= RESUBMITS:
                    self._submit(job, queue)
                    continue
                yield Outcome(index, None, f"its Ray worker died: {_cause(e)}")
                if self.live == 0:
                    yield from self._abandon(queue, source)
                    return
                continue
            except ray.exceptions.RayError as e:
                yield Outcome(index, None, f"Ray could not run it: {_cause(e)}")
                continue
            self.frame_pids[index] = pid
            yield outcome

    def _submit(self, job: Job, queue: deque[Job]) -> None:
        self.pool.submit(lambda actor, j: actor.run.remote(j.frame.index, j.request), job)
        queue.append(job)

    def _abandon(self, queue: deque[Job], source: Iterator[Job]) -> Iterator[Outcome]:
        reason = "every Ray worker died; rerun the batch to finish it"
        for job in [*queue, *source]:
            yield Outcome(job.frame.index, None, reason)

    def close(self) -> None:
        """End the actors, and the Ray this pool started (never a cluster it only joined)."""
        for a in getattr(self, "actors", []):
            self._ray.kill(a)
        if self._owns_connection:
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _cause(e: Exception) -> str:
    return " ".join(str(e).split())[:200]
