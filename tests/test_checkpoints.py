"""Single-file checkpoints and the hub cache: A1111 files load offline, pickled code is refused, ids resolve."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from noisebrush.bench import standins
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.engine.sources import list_models, resolve_model
from noisebrush.core.errors import BadInput

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def _run(engine, model: str | Path, guide: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    return engine.sdedit(
        SDEditRequest(
            guide=guide,
            mask=mask,
            model=str(model),
            strength=0.6,
            steps=8,
            prompt="a red barn",
            guidance=5.0,
            seed=3,
            device="cpu",
        )
    )[0]


@pytest.fixture(scope="module")
def exported(sd_model, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("single")
    return {
        "safetensors": standins.export_single_file(sd_model, out / "tiny-sd.safetensors"),
        "ckpt": standins.export_single_file(sd_model, out / "tiny-sd.ckpt"),
    }


def test_export_uses_the_original_key_names(exported):
    from safetensors import safe_open

    with safe_open(str(exported["safetensors"]), framework="pt") as f:
        keys = set(f.keys())
    roots = {k.split(".")[0] for k in keys}
    assert roots == {"model", "first_stage_model", "cond_stage_model"}
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys


@pytest.mark.parametrize("kind", ["safetensors", "ckpt"])
def test_single_file_gives_the_folders_image(kind, exported, sd_model, engine, guide, box_mask, monkeypatch):
    """An A1111-style file (weights only) + the folder's configs = the folder: the same image, bit for bit."""
    monkeypatch.setenv("NOISEBRUSH_CONFIG", str(sd_model))
    ours = _run(engine, exported[kind], guide, box_mask)
    ref = _run(engine, sd_model, guide, box_mask)
    assert np.array_equal(ours, ref)
    assert engine.prior(str(exported[kind]), "cpu").kind == "latent-vp"


def test_pickled_code_is_refused_and_never_run(tmp_path, sd_model, engine, guide, monkeypatch):
    monkeypatch.setenv("NOISEBRUSH_CONFIG", str(sd_model))
    marker = tmp_path / "code-ran"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callback": _Touch(marker)}, ckpt)
    with pytest.raises(BadInput, match=r"pickle that needs code.*never runs.*safetensors"):
        _run(engine, ckpt, guide)
    assert not marker.exists(), "the checkpoint's code must not run"


class _Touch:
    """A pickled object whose unpickling would create a file: stands for arbitrary code in a .ckpt."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_damaged_and_foreign_files_are_clear_errors(tmp_path, engine, guide):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput, match="not a valid safetensors file"):
        _run(engine, bad, guide)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, str(other))
    with pytest.raises(BadInput, match="not a Stable Diffusion"):
        _run(engine, other, guide)


def _fake_hub(cache: Path, repo: str, source: Path) -> Path:
    """The hub cache layout: models--org--name/{refs/main, snapshots/<commit>/...}."""
    base = cache / ("models--" + repo.replace("/", "--"))
    snapshot = base / "snapshots" / SNAPSHOT
    shutil.copytree(source, snapshot)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(SNAPSHOT)
    return snapshot


def test_hub_id_resolves_from_the_local_cache(tmp_path, sd_model, engine, guide, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = _fake_hub(cache, "someone/tiny-sd", sd_model)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert resolve_model("someone/tiny-sd") == snapshot
    assert np.array_equal(_run(engine, "someone/tiny-sd", guide), _run(engine, sd_model, guide))
    assert any(m.name == "someone/tiny-sd" and m.source == "hub-cache" for m in list_models())
    with pytest.raises(BadInput, match="never downloads"):
        resolve_model("someone/not-cached")


def test_single_file_finds_its_configs_in_the_hub_cache(
    tmp_path, sd_model, exported, engine, guide, monkeypatch
):
    """Without NOISEBRUSH_CONFIG, an SD 1.x file takes its configs from a cached SD 1.5 repo."""
    cache = tmp_path / "hub"
    _fake_hub(cache, "stable-diffusion-v1-5/stable-diffusion-v1-5", sd_model)
    monkeypatch.delenv("NOISEBRUSH_CONFIG", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    fresh = Engine()  # the shared engine may hold this file already, loaded with NOISEBRUSH_CONFIG
    assert np.array_equal(_run(fresh, exported["safetensors"], guide), _run(engine, sd_model, guide))
