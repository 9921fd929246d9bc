"""A live NoiseBrush server on a free loopback port (uvicorn in a thread), and a fake engine for it."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import LeditsRequest, SDEditRequest
from noisebrush.core.errors import BadInput
from noisebrush.core.server.app import ServerConfig, create_app, make_server

TOKEN = "test-token-0123456789abcdef"


def png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def from_b64(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


@dataclass
class FakeEngine:
    """Inverts the image where mask > 0.5 (everything without a mask) in `steps` steps of `delay` s.

    A prompt of "explode" raises RuntimeError, "reject" raises BadInput: the two ways an engine fails. An
    image whose first pixel is (1, 2, 3) raises RuntimeError too: one bad frame of a batch.
    """

    steps: int = 4
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(
        self, image: np.ndarray, mask: np.ndarray | None, prompt: str, cb: Callable[[Progress], None] | None
    ) -> np.ndarray:
        with self.lock:
            self.calls.append(prompt)
        if prompt == "explode" or tuple(image[0, 0, :3]) == (1, 2, 3):
            raise RuntimeError("fake engine exploded")
        if prompt == "reject":
            raise BadInput("fake engine rejects this prompt; allowed: anything else")
        h, w = image.shape[:2]
        out = image.copy()
        sel = np.ones((h, w), bool) if mask is None else mask > 0.5
        out[..., :3][sel] = 255 - image[..., :3][sel]
        for i in range(1, self.steps + 1):
            if self.delay:
                time.sleep(self.delay)
            if cb is not None:
                cb(Progress(step=i, total=self.steps, box=(0, 0, w, h), _render=lambda: out[..., :3].copy()))
        return out

    def sdedit(
        self,
        req: SDEditRequest,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[np.ndarray]:
        return [self._run(req.guide, req.mask, req.prompt, callback) for _ in range(req.variations)]

    def ledits(
        self,
        req: LeditsRequest,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        return self._run(req.image, req.mask, req.target_prompt, callback)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAKE_MODELS = [{"name": "default", "kind": "pixel", "source": "bundled", "size_bytes": 1, "vocabulary": None}]


@contextmanager
def live_server(engine: Any = None, port: int | None = None, **config: Any) -> Iterator[tuple[str, Any]]:
    """Yield (base URL, app) of a server running `engine` (default: a FakeEngine) until the block ends."""
    port = port or free_port()
    if engine is None or isinstance(engine, FakeEngine):
        config.setdefault("memory_budget", 0)  # a fake engine does not use the bundled prior's memory
    cfg = ServerConfig(token=TOKEN, port=port, **config)
    eng = engine if engine is not None else FakeEngine()
    models = (lambda: FAKE_MODELS) if engine is None or isinstance(engine, FakeEngine) else None
    kwargs: dict[str, Any] = {"models": models} if models else {}
    app = create_app(cfg, lambda: eng, **kwargs)
    server = make_server(app, cfg, log_level="warning", timeout_graceful_shutdown=1)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def serve_cli_with_fake_engine(argv: list[str], steps: int, delay: float) -> int:
    """`noisebrush serve ARGV` in this process with a FakeEngine: the entry point of a real server
    process in tests (options, token file, state folder, signals: everything but the model). Parsed by
    cli_serve's own parser, which spares the 30 s the other commands' torch imports take on a busy CPU."""
    import argparse

    from noisebrush.core.cli import serve as cli_serve
    from noisebrush.core.server import app as server

    real_serve = server.serve
    server.serve = lambda config, engine_factory=None: real_serve(config, lambda: FakeEngine(steps, delay))
    parser = argparse.ArgumentParser(prog="noisebrush")
    cli_serve.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
