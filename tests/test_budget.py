"""The memory budget: a job that would not fit is refused before it runs, with the size that would."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisebrush.core.engine import budget
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.sources import model_settings, resolve_model
from noisebrush.core.errors import BadInput
from tests.conftest import needs_bundled


def full_mask_job(side: int, **kw) -> SDEditRequest:
    # Broadcast views: a 4096 canvas costs no memory in the test itself.
    guide = np.broadcast_to(np.uint8(128), (side, side, 3))
    mask = np.broadcast_to(np.float32(1.0), (side, side))
    return SDEditRequest(guide=guide, mask=mask, device="cpu", **kw)


def bundled() -> budget.Footprint:
    path = resolve_model("default")
    return budget.footprint(path, model_settings(path))


@needs_bundled
def test_a_4096_full_mask_job_is_refused_naming_the_size_that_fits():
    # 4 GB: in MultiDiffusion tiles (core/engine/tiles.py) 4096 px fits 6 GB; its canvas-sized tensors do not fit 4.
    with pytest.raises(BadInput) as err:
        budget.check(full_mask_job(4096), budget.parse_size("4G"))
    message = str(err.value)
    assert "4096x4096" in message and "the memory budget is 4.0 GB" in message
    side = int(re.search(r"up to (\d+)x\1", message).group(1))
    budget.check(full_mask_job(side), budget.parse_size("4G"))  # what the message offers is accepted


@needs_bundled
@settings(max_examples=200, deadline=None)
@given(gb=st.floats(0.6, 64.0), rows=st.integers(1, 8))
def test_the_named_size_is_the_largest_that_fits(gb, rows):
    fp = bundled()
    limit = int(gb * 1e9)
    side = fp.largest_side(limit, rows)
    if side:
        assert fp.peak(side, side, rows) <= limit
    bigger = side + fp.multiple
    assert fp.peak(bigger, bigger, rows) > limit


@needs_bundled
def test_guidance_and_variations_count_as_rows():
    fp = bundled()
    assert budget.rows(full_mask_job(64), fp) == 1
    assert budget.rows(full_mask_job(64, prompt="day"), fp) == 2  # the bundled prior guides at 4
    assert budget.rows(full_mask_job(64, prompt="day", variations=3), fp) == 6


@needs_bundled
def test_a_small_selection_on_a_big_canvas_is_sized_by_its_box():
    guide = np.broadcast_to(np.uint8(128), (4096, 4096, 3))
    mask = np.zeros((4096, 4096), np.float32)
    mask[100:356, 200:456] = 1
    budget.check(SDEditRequest(guide=guide, mask=mask, device="cpu"), budget.parse_size("2G"))


@needs_bundled
def test_the_check_imports_no_torch_so_a_refusal_at_submit_is_quick():
    code = (
        "import sys, numpy as np\n"
        "from noisebrush.core.engine import budget\n"
        "from noisebrush.core.engine.requests import SDEditRequest\n"
        "g = np.broadcast_to(np.uint8(1), (4096, 4096, 3)); m = np.broadcast_to(np.float32(1), (4096, 4096))\n"
        "try:\n"
        "    budget.check(SDEditRequest(guide=g, mask=m, device='cpu'), 10**9)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["BadInput", "False"]


def test_the_engine_refuses_before_it_runs(ddpm_model):
    engine = Engine(memory_budget=budget.parse_size("100M"))
    req = SDEditRequest(guide=np.zeros((64, 64, 3), np.uint8), model=str(ddpm_model), device="cpu", steps=4)
    with pytest.raises(BadInput, match="memory budget is 0.1 GB"):
        engine.sdedit(req)
    assert not engine._priors, "the model was loaded for a job that cannot run"
    assert len(Engine(memory_budget=0).sdedit(req)) == 1  # 0: no limit


@pytest.mark.parametrize(
    ("text", "value"), [("6G", 6 * 10**9), ("800MB", 8 * 10**8), ("1.5GiB", int(1.5 * 2**30)), ("0", 0)]
)
def test_sizes_read_as_people_write_them(text, value):
    assert budget.parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "-1G", "nanG", "inf"])
def test_a_bad_size_says_what_is_allowed(text):
    with pytest.raises(BadInput, match="e.g. 6G"):
        budget.parse_size(text)


def test_edit_rejects_a_bad_budget_as_a_usage_error(tmp_path):
    from noisebrush.core.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["edit", str(tmp_path / "g.png"), "-o", str(tmp_path / "o.png"), "--memory-budget", "lots"])
    assert exit_.value.code == 2


@needs_bundled
def test_the_server_refuses_an_oversized_job_at_submit():
    from fastapi.testclient import TestClient
    from PIL import Image

    from noisebrush.core.server.app import ServerConfig, create_app

    def png(img: Image.Image) -> str:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return base64.b64encode(buf.getvalue()).decode()

    body = {
        "kind": "sdedit",
        "guide": png(Image.new("RGB", (4096, 4096), (90, 140, 220))),
        "mask": png(Image.new("L", (4096, 4096), 255)),
        "model": "default",
        "device": "cpu",
    }
    config = ServerConfig(token="t" * 32, memory_budget=budget.parse_size("3G"))

    def no_engine() -> Engine:
        raise AssertionError("a refused job must never reach the engine")

    app = create_app(config, no_engine)
    with TestClient(app) as client:
        r = client.post("/v1/jobs", json=body, headers={"Authorization": f"Bearer {'t' * 32}"})
        assert r.status_code == 400, r.text
        assert re.search(
            r"needs about .* GB; the memory budget is 3.0 GB; .* up to \d+x\d+", r.json()["detail"]
        )
        assert app.state.queue.jobs() == [], "a refused job must not be queued"
