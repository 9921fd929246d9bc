"""Step previews decode through a tiny autoencoder (TAESD) when the models folder has one for the model's
family, and through the linear map otherwise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from noisebrush.bench import standins
from noisebrush.core.engine import previews
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.requests import SDEditRequest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _previews(engine, model, guide):
    seen = []
    req = SDEditRequest(guide=guide, model=str(model), strength=0.6, steps=5, seed=1, device="cpu")
    engine.sdedit(req, callback=lambda p: seen.append(p.preview()))
    return seen


@pytest.mark.parametrize("form", ["folder", "file"])
def test_taesd_in_the_models_folder_decodes_the_previews(sd_model, guide, tmp_path, monkeypatch, form):
    models = tmp_path / "models"
    target = models / ("taesd" if form == "folder" else "taesd.safetensors")
    # A single file has no config: it must be TAESD's own shape (8x), which previews resize to this VAE's 2x.
    standins.tiny_taesd(target, seed=3, size="tiny" if form == "folder" else "real")
    standins.tiny_taesd(models / "taesdxl", seed=4)  # another family's: never chosen for SD 1.x
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    engine = Engine()
    prior = engine.prior(str(sd_model), "cpu")
    assert isinstance(prior.preview_decoder, previews.TinyPreview)
    assert prior.preview_decoder.path == target
    calls = []
    decode = prior.preview_decoder.decoder.decode
    prior.preview_decoder.decoder.decode = lambda z, **kw: calls.append(z.shape) or decode(z, **kw)
    shown = _previews(engine, sd_model, guide)
    assert len(calls) == len(shown) >= 3 and all(s is not None and s.shape == guide.shape for s in shown)
    # The same x0 through the linear map looks different: the previews really came from TAESD.
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(tmp_path / "empty"))
    linear = _previews(Engine(), sd_model, guide)
    assert not np.array_equal(linear[-1], shown[-1])


def test_tiny_preview_is_the_autoencoders_own_decode(sd_model, tmp_path):
    from diffusers import AutoencoderTiny

    path = standins.tiny_taesd(tmp_path / "taesd", size="real")
    model = AutoencoderTiny.from_pretrained(path).eval()
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    rgb = previews.TinyPreview(model, path)(z, 8)
    with torch.no_grad():
        assert torch.equal(rgb, model.decode(z).sample.clamp(-1, 1))
    assert rgb.shape == (1, 3, 64, 64)


def test_no_taesd_keeps_the_linear_map(sd_model, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(tmp_path / "none"))
    assert Engine().prior(str(sd_model), "cpu").preview_decoder is None


def test_a_broken_taesd_warns_and_keeps_the_linear_map(sd_model, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "taesd.safetensors").write_bytes(b"")
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prior = Engine().prior(str(sd_model), "cpu")
    assert prior.preview_decoder is None
    assert any("linear map" in str(w.message) for w in caught)


def test_a_single_file_of_another_shape_warns_and_keeps_the_linear_map(sd_model, tmp_path, monkeypatch):
    models = tmp_path / "models"
    standins.tiny_taesd(models / "taesd.safetensors", size="tiny")
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    with pytest.warns(UserWarning, match="does not fit TAESD"):
        assert Engine().prior(str(sd_model), "cpu").preview_decoder is None


def test_a_taesd_for_other_latents_is_skipped(sd_model, tmp_path, monkeypatch):
    models = tmp_path / "models"
    standins.tiny_taesd(models / "taesd", latent_channels=16)  # an SD3/Flux-style tiny autoencoder
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    with pytest.warns(UserWarning, match="16-channel"):
        prior = Engine().prior(str(sd_model), "cpu")
    assert prior.preview_decoder is None


def test_sdxl_uses_taesdxl(sdxl_model, tmp_path, monkeypatch):
    models = tmp_path / "models"
    standins.tiny_taesd(models / "taesd", seed=1)
    standins.tiny_taesd(models / "taesdxl", seed=2)
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    prior = Engine().prior(str(sdxl_model), "cpu")
    assert prior.preview_decoder.path == models / "taesdxl"
