"""Host tests: a live server on loopback with the real engine and bundled prior.

Without the bundled prior they skip, unless NOISEBRUSH_HOSTS_FAKE_ENGINE=1 asks for the fake engine
(useful while working on the plugins; it inverts the selected pixels).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "server"))

from nb_live import TOKEN, live_server  # noqa: E402

BUNDLED = REPO / "resources" / "models" / "default"


@pytest.fixture(scope="session")
def host_server() -> Iterator[tuple[str, str, int]]:
    """(URL, token, steps) of a live server for the hosts."""
    if os.environ.get("NOISEBRUSH_HOSTS_FAKE_ENGINE") == "1":
        with live_server(host="127.0.0.1") as (url, _app):
            yield url, TOKEN, 0
        return
    if not (BUNDLED / "model_index.json").exists():
        pytest.skip("the bundled prior is not in resources/models/default yet (NOISEBRUSH_HOSTS_FAKE_ENGINE=1 fakes it)")
    from noisebrush.core.engine import Engine

    with live_server(Engine()) as (url, _app):
        yield url, TOKEN, 8
