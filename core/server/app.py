"""The engine over HTTP on loopback (FastAPI): jobs in, progress and previews out, results back.

Every route but GET /v1/health needs `Authorization: Bearer <token>`; Host/Origin checks and the body
limit live in `guard.Guard`, the job queue in `jobs.JobQueue`. `create_app` takes the engine (or a fake)
so tests run without torch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from noisebrush.core.engine import budget
from noisebrush.core.engine.images import encode_png
from noisebrush.core.engine.requests import excerpt
from noisebrush.core.errors import BadInput
from noisebrush.core.server import batches, wire
from noisebrush.core.server.auth import allowed_hosts, ascii_number, bearer_ok
from noisebrush.core.server.guard import Guard
from noisebrush.core.server.jobs import EngineLike, Job, JobQueue, QueueFull
from noisebrush.core.server.journal import Journal, Retention
from noisebrush.core.version import version

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

API_VERSION = 1
DEFAULT_PORT = 7865
PUBLIC_PATHS = frozenset({"/v1/health"})  # answered without a token; everything else needs one


@dataclass
class ServerConfig:
    token: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_queued: int = 64
    preview_interval: float = 0.5  # seconds between two previews of one job
    allow_hosts: list[str] = field(default_factory=list)  # extra Host names, e.g. a LAN name
    state_dir: Path | None = None  # where the job journal lives; None: jobs are kept in memory only
    keep_hours: float = 24.0  # how long the journal keeps a finished job and its results
    keep_jobs: int = 1000  # ... at most this many finished jobs
    keep_mb: float = 1024.0  # ... whose results take at most this many MiB
    # Bytes one job may peak at (core/engine/budget.py), checked at submit; None: half the memory available when the
    # app starts; 0: no limit.
    memory_budget: int | None = None
    max_frames: int = 256  # images in one batch job
    ray: str | None = (
        None  # batch jobs on this Ray cluster ("auto": start or join one here); None: in-process
    )

    def journal_path(self) -> Path | None:
        """One journal per port, so two servers sharing a state folder never mark each other's jobs lost."""
        return None if self.state_dir is None else self.state_dir / f"jobs-{self.port}.sqlite"


def default_models() -> list[dict[str, Any]]:
    """Installed priors with their closed vocabularies (read from noisebrush.json; no torch import)."""
    from noisebrush.core.engine.sources import list_models, schedule_steps

    out = []
    for m in list_models():
        vocab = None
        meta = m.path / "noisebrush.json" if m.path.is_dir() else None
        if meta is not None and meta.is_file():
            try:
                vocab = json.loads(meta.read_text()).get("vocabulary")
            except (OSError, ValueError):
                vocab = None
        out.append(
            {
                "name": m.name,
                "kind": m.kind,
                "source": str(m.source),
                "size_bytes": m.size_bytes,
                "vocabulary": vocab,
                "schedule_steps": schedule_steps(m.path),
            }
        )
    return out


def default_engine() -> EngineLike:
    from noisebrush.core.engine.engine import Engine

    return Engine(memory_budget=0)  # the server holds jobs to its budget at submit (ServerConfig)


def open_journal(config: ServerConfig) -> Journal | None:
    path = config.journal_path()
    if path is None:
        return None
    keep = Retention(config.keep_hours * 3600.0, config.keep_jobs, int(config.keep_mb * 1024 * 1024))
    return Journal(path, keep)


def create_app(
    config: ServerConfig,
    engine_factory: Callable[[], EngineLike] = default_engine,
    models: Callable[[], list[dict[str, Any]]] = default_models,
) -> FastAPI:
    """The ASGI app (wrapped in `Guard`); `app.state.queue` is its job queue."""
    memory_budget = budget.default_budget() if config.memory_budget is None else config.memory_budget
    queue = JobQueue(
        engine_factory,
        max_queued=config.max_queued,
        preview_interval=config.preview_interval,
        encode=encode_png,
        journal=open_journal(config),
        batches=batches.BatchRunner(config.ray, encode_png),
    )
    bearer = HTTPBearer(auto_error=False, description="the token from the file `noisebrush token` names")

    def require_token(request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not bearer_ok(request.headers.get("authorization"), config.token):
            raise HTTPException(
                401,
                "missing or wrong token: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        queue.close()

    app = FastAPI(
        lifespan=lifespan,
        title="NoiseBrush",
        version=version(),
        description=__doc__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.queue = queue
    app.state.config = config
    auth = [Depends(require_token)]
    errors: dict[int | str, dict[str, Any]] = {401: {"model": wire.ErrorOut}, 404: {"model": wire.ErrorOut}}

    @app.exception_handler(BadInput)
    async def _bad_input(_: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": wire.validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(wire.TooLarge)
    async def _too_large(_: Request, exc: wire.TooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(QueueFull)
    async def _full(_: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": f"server busy: {exc}"}, status_code=429)

    @app.get("/v1/health", response_model=wire.Health, tags=["server"])
    def health() -> dict[str, Any]:
        """Is the server up? Needs no token."""
        return {"status": "ok", "version": version(), "api": API_VERSION}

    @app.get("/v1/openapi.json", dependencies=auth, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get(
        "/v1/models", response_model=list[wire.ModelOut], dependencies=auth, responses=errors, tags=["models"]
    )
    def list_models() -> list[dict[str, Any]]:
        """Installed priors; `vocabulary` lists the allowed words of a closed-vocabulary prior."""
        return models()

    @app.post(
        "/v1/jobs",
        response_model=wire.JobOut,
        status_code=201,
        dependencies=auth,
        tags=["jobs"],
        responses={
            **errors,
            400: {"model": wire.ErrorOut},
            413: {"model": wire.ErrorOut},
            429: {"model": wire.ErrorOut},
        },
    )
    def submit(body: wire.JobIn) -> dict[str, Any]:  # type: ignore[valid-type]
        """Queue an SDEdit or LEDITS run, or a batch of either over many images; jobs run one at a time, in
        order."""
        if isinstance(body, wire.BATCH_JOBS):
            held = batches.hold(body, config.max_pixels, config.max_frames)
            batches.check(held, models(), memory_budget)
            return _job_out(queue.submit("batch", held), with_images=False)
        kind, req = wire.to_request(body, config.max_pixels, checks_only=True)
        wire.check_model(req, models())
        budget.check(req, memory_budget)
        # `req` was built only to be checked; the waiting job holds the PNGs as they came in.
        return _job_out(queue.submit(kind, wire.hold(body, config.max_pixels)), with_images=False)

    @app.get(
        "/v1/jobs/{job_id}", response_model=wire.JobOut, dependencies=auth, responses=errors, tags=["jobs"]
    )
    def status(job_id: str, images: bool = True) -> dict[str, Any]:
        """Status, progress and (once succeeded, unless images=false) the result PNGs."""
        return _job_out(_find(job_id), with_images=images)

    @app.post(
        "/v1/jobs/{job_id}/cancel",
        response_model=wire.JobOut,
        dependencies=auth,
        responses=errors,
        tags=["jobs"],
    )
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a waiting job, or stop a running one at its next step. No effect on a finished job."""
        found = _find(job_id)
        return _job_out(queue.cancel(job_id) or found, with_images=False)  # a journaled job is finished

    @app.get(
        "/v1/jobs/{job_id}/events",
        dependencies=auth,
        responses={
            **errors,
            200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        },
        tags=["jobs"],
    )
    async def events(job_id: str, request: Request, since: int = 0) -> StreamingResponse:
        """Server-sent events: `progress` per step, `preview` (throttled PNG of the box region), and
        `status` on every change; the stream ends after the final status. `since` skips events already seen
        (each event's `id` is its index)."""
        job = queue.get(job_id)
        if job is None:
            job = await asyncio.to_thread(_find, job_id)  # the journal waits on disk
        last = request.headers.get("last-event-id")
        start = int(last) + 1 if last and ascii_number(last) else max(0, since)
        return StreamingResponse(
            _stream(job, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(job: Job, index: int) -> AsyncIterator[str]:
        queue.watch(job, +1)
        idle = 0.0
        try:
            while True:
                evs, done = queue.events_since(job, index)
                for ev in evs:
                    data = dict(ev.data)
                    if ev.kind == "preview":
                        if ev.preview is None:  # superseded by a newer preview
                            index += 1
                            continue
                        data["png"] = await asyncio.to_thread(encode_png, ev.preview)
                    yield f"id: {index}\nevent: {ev.kind}\ndata: {json.dumps(data)}\n\n"
                    index += 1
                if done and not evs:
                    return
                if evs:
                    idle = 0.0
                else:
                    await asyncio.sleep(0.05)
                    idle += 0.05
                    if idle >= 10.0:
                        idle = 0.0
                        yield ": keep-alive\n\n"
        finally:
            queue.watch(job, -1)

    def _find(job_id: str) -> Job:
        job = queue.find(job_id)
        if job is None:
            kept = f"kept for {config.keep_hours:g} h" if config.state_dir else "forgotten after a while"
            raise HTTPException(404, f"no job {excerpt(job_id)!r} (finished jobs are {kept})")
        return job

    def _job_out(job: Job, with_images: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "position": queue.position(job),
            "step": job.step,
            "total": job.total,
            "stage": job.stage,
            "variation": job.variation,
            "error": job.error,
            "error_kind": job.error_kind,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
        }
        if job.kind == "batch":
            out.update(frame=job.frame, frames=job.frames, frame_errors=job.frame_errors)
        if with_images and job.status == "succeeded":
            out["images"] = job.results
        return out

    return app


def guarded(app: FastAPI, config: ServerConfig) -> Guard:
    """`app` behind the Host/Origin/body-size checks: what uvicorn serves."""
    return Guard(
        app,
        hosts=allowed_hosts(config.host, config.allow_hosts),
        port=config.port,
        any_ip=config.host in ("0.0.0.0", "::", ""),
        max_body=config.max_body_bytes,
        token=config.token,
        public=PUBLIC_PATHS,
    )


def make_server(
    app: FastAPI, config: ServerConfig, log_level: str = "info", timeout_graceful_shutdown: int = 3
) -> uvicorn.Server:
    """The uvicorn server for `app`. On SIGTERM or Ctrl-C every unfinished job ends at once (failed,
    error_kind "lost"), before uvicorn waits for open connections: an event stream then gets that final
    status and closes, instead of being cut when the grace period runs out."""
    import uvicorn

    queue: JobQueue = app.state.queue

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            queue.shutdown()
            await super().shutdown(sockets)

    options = uvicorn.Config(
        guarded(app, config),
        host=config.host,
        port=config.port,
        log_level=log_level,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
    )
    return Server(options)


def serve(config: ServerConfig, engine_factory: Callable[[], EngineLike] = default_engine) -> None:
    """Run the server in this thread until interrupted."""
    make_server(create_app(config, engine_factory), config).run()
