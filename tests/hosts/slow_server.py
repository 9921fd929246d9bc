"""A live server for the cancel tests whose fake engine takes STEP_S per step (fixture: conftest.slow_server)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

STEP_S = 3.0  # seconds per step of the slow server: a cancel sent with the next event arrives this late


@dataclass
class SlowServer:
    """A live server whose fake engine takes STEP_S per step, and every cancel request it received:
    (job id, the job's step then, time.time() then)."""

    url: str
    token: str
    app: Any
    cancels: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def server(self) -> tuple[str, str, int]:
        return self.url, self.token, 0

    def jobs(self) -> list[Any]:
        return self.app.state.queue.jobs()

    def wait_for(self, cond: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out waiting for the server"
            time.sleep(0.01)
