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


def _original_layout(model, part: str) -> dict[str, torch.Tensor]:
    """madebyollin's own file of one half: its Sequential's keys, the decoder's numbered from 1 (its module 0 is
    the input clamp, which diffusers applies in forward), written here from diffusers' modules."""
    layers = getattr(model, part).layers.state_dict()
    shift = 1 if part == "decoder" else 0
    return {
        f"{int(k.split('.', 1)[0]) + shift}.{k.split('.', 1)[1]}": v.contiguous() for k, v in layers.items()
    }


def test_madebyollins_decoder_file_is_the_same_decoder(sd_model, tmp_path, monkeypatch):
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    torch.manual_seed(5)
    model = AutoencoderTiny().eval()  # TAESD's own shape, random weights
    models = tmp_path / "models"
    models.mkdir()
    original = _original_layout(model, "decoder")
    assert {"1.weight", "3.conv.0.weight", "3.conv.4.weight", "7.weight"} <= set(
        original
    )  # the real file's keys
    save_file(original, str(models / "taesd_decoder.safetensors"))
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read, not skipped with a warning
        prior = Engine().prior(str(sd_model), "cpu")
    assert prior.preview_decoder.path == models / "taesd_decoder.safetensors"
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(prior.preview_decoder.decoder.decode(z).sample, model.decode(z).sample)


def test_madebyollins_files_refused_or_skipped_with_why(sd_model, tmp_path, monkeypatch):
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    torch.manual_seed(6)
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    save_file(_original_layout(AutoencoderTiny(), "encoder"), str(models / "taesd_decoder.safetensors"))
    with pytest.warns(UserWarning, match="TAESD's encoder; previews need its decoder"):
        assert Engine().prior(str(sd_model), "cpu").preview_decoder is None
    # TAESD3/TAEF1's decoder in the same layout: 16-channel latents, told apart from the file alone.
    save_file(
        _original_layout(AutoencoderTiny(latent_channels=16), "decoder"),
        str(models / "taesd_decoder.safetensors"),
    )
    with pytest.warns(UserWarning, match="16-channel"):
        assert Engine().prior(str(sd_model), "cpu").preview_decoder is None
