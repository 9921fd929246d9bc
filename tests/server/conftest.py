from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from nb_live import TOKEN, FakeEngine, live_server


@pytest.fixture(scope="module")
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture(scope="module")
def server(engine: FakeEngine) -> Iterator[str]:
    with live_server(engine, max_body_bytes=2_000_000, max_pixels=256 * 256) as (url, _app):
        yield url


@pytest.fixture()
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


@pytest.fixture()
def guide() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
