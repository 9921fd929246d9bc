"""Shared fixtures: tiny random models built offline once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The engine computes in bfloat16 on CPUs that have it (core/engine/precision.py): the machines CI lands on
# differ, so the suite pins float32 and its comparisons (diffusers parity, bit-exact reruns) mean the same on
# every one; tests/test_precision.py runs the bfloat16 path on purpose.
os.environ.setdefault("NOISEBRUSH_PRECISION", "float32")

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "resources" / "models" / "default"


def _build(factory, tmp_path_factory, name: str, **kw) -> Path:
    from noisebrush.bench import standins

    return getattr(standins, factory)(tmp_path_factory.mktemp(name) / name, **kw)


@pytest.fixture(scope="session")
def ddpm_model(tmp_path_factory) -> Path:
    return _build("tiny_ddpm", tmp_path_factory, "ddpm")


@pytest.fixture(scope="session")
def ve_model(tmp_path_factory) -> Path:
    return _build("tiny_ve", tmp_path_factory, "ve")


@pytest.fixture(scope="session")
def sd_model(tmp_path_factory) -> Path:
    return _build("tiny_sd", tmp_path_factory, "sd")


@pytest.fixture(scope="session")
def sd_ddim_model(tmp_path_factory) -> Path:
    return _build("tiny_sd", tmp_path_factory, "sd_ddim", scheduler="DDIMScheduler")


@pytest.fixture(scope="session")
def sdxl_model(tmp_path_factory) -> Path:
    return _build("tiny_sdxl", tmp_path_factory, "sdxl")


@pytest.fixture(scope="session")
def engine():
    from noisebrush.core.engine.engine import Engine

    return Engine(max_priors=2)


@pytest.fixture
def guide() -> np.ndarray:
    """A 40x56 stroke-like guide: flat colour blocks, as a painter would rough out."""
    g = np.zeros((40, 56, 3), np.uint8)
    g[:20] = (90, 140, 220)  # sky
    g[20:] = (60, 130, 50)  # field
    g[12:28, 18:38] = (200, 200, 210)  # a mountain
    return g


@pytest.fixture
def box_mask() -> np.ndarray:
    m = np.zeros((40, 56), np.float32)
    m[8:30, 16:44] = 1.0
    return m


needs_bundled = pytest.mark.skipif(
    not (BUNDLED / "model_index.json").exists(),
    reason="the bundled prior is not in resources/models/default yet",
)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread: OpenMP workers spin against each other on a shared, busy machine
    (10x slower here). Modules opt in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
