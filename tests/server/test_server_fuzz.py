"""Schemathesis over the server's own OpenAPI description: whatever it sends, no answer is a 5xx.

Driven through hypothesis directly (schemathesis's pytest plugin does not load under pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from nb_live import TOKEN, live_server

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install schemathesis)"
)
from schemathesis.generation import GenerationMode  # noqa: E402

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every built-in check (the CLI's --checks all). A body the schema allows can still be refused with a message:
# images must decode as PNG within the pixel limit (400, 413), a model must be installed (400).
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "413", "429"]},
        }
    }
)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[str]:
    with live_server(max_body_bytes=1_000_000, max_pixels=64 * 64) as (url, _app):
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzz_server: str, mode: GenerationMode) -> None:
    doc = httpx.get(f"{fuzz_server}/v1/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(doc, config=CONFIG)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/health", "/v1/models", "/v1/jobs", "/v1/jobs/{job_id}"}
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=fuzz_server, headers=AUTH, timeout=30)  # every built-in check
            r = case.call(base_url=fuzz_server, timeout=30)  # and without the token
            assert r.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {r.status_code}: {r.text[:300]}"
            )

        try:
            check()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, op.path  # nothing to break in a route without inputs
