"""LoRA files on Stable Diffusion stand-ins: weight 0 is no LoRA to the bit, weight 1 changes the edit, two
compose, and files that are not LoRAs for this model are refused with what they are."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from noisebrush.bench import standins
from noisebrush.core.cli.options import add_request_options, request_fields
from noisebrush.core.engine import loras
from noisebrush.core.engine.requests import Lora, SDEditRequest
from noisebrush.core.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(sd_model, sdxl_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    return {
        "kohya": standins.tiny_lora(d / "kohya.safetensors", sd_model, "kohya", seed=1),
        "peft": standins.tiny_lora(d / "peft.safetensors", sd_model, "diffusers", seed=2),
        "xl": standins.tiny_lora(d / "xl.safetensors", sdxl_model, "diffusers", seed=3),
        "xl_kohya": standins.tiny_lora(d / "xl_kohya.safetensors", sdxl_model, "kohya", seed=3),
    }


def _edit(engine, model, guide, items=(), **kw):
    req = SDEditRequest(
        guide=guide,
        model=str(model),
        strength=0.6,
        steps=5,
        prompt="a red barn",
        seed=4,
        device="cpu",
        loras=[Lora(str(p), w) for p, w in items],
        **kw,
    )
    return engine.sdedit(req)[0]


def test_weight_zero_is_no_lora_bit_for_bit_and_one_changes_the_edit(engine, sd_model, guide, files):
    plain = _edit(engine, sd_model, guide)
    zero = _edit(engine, sd_model, guide, [(files["kohya"], 0.0)])
    assert np.array_equal(zero, plain)
    one = _edit(engine, sd_model, guide, [(files["kohya"], 1.0)])
    assert np.abs(one.astype(int) - plain).max() > 8
    # Turned off after the run: the next edit without LoRAs is the plain one again.
    assert np.array_equal(_edit(engine, sd_model, guide), plain)
    assert str(files["kohya"]) in loras.loaded(engine.prior(str(sd_model), "cpu"))


def test_kohya_and_diffusers_layouts_of_the_same_weights_give_the_same_edit(
    engine, sd_model, guide, tmp_path
):
    a = standins.tiny_lora(tmp_path / "a.safetensors", sd_model, "kohya", seed=9)
    b = standins.tiny_lora(tmp_path / "b.safetensors", sd_model, "diffusers", seed=9)
    ka = _edit(engine, sd_model, guide, [(a, 0.7)])
    kb = _edit(engine, sd_model, guide, [(b, 0.7)])
    assert np.abs(ka.astype(int) - kb).max() <= 1


def test_two_loras_compose(engine, sd_model, guide, files):
    prior = engine.prior(str(sd_model), "cpu")
    both = [Lora(str(files["kohya"]), 1.0), Lora(str(files["peft"]), 0.5)]
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    emb = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))

    def out(items):
        with loras.applied(prior, items), torch.no_grad():
            return prior.unet(x, 500, encoder_hidden_states=emb).sample

    base, a, b, ab = out([]), out(both[:1]), out(both[1:]), out(both)
    # LoRA changes add: each is a low-rank term on the same base weights (the attention softmax makes the
    # UNet's output only roughly additive, so compare the changes, not exact sums).
    assert (ab - base).abs().max() > (a - base).abs().max() * 0.5
    assert not torch.equal(ab, a) and not torch.equal(ab, b)
    img_both = _edit(engine, sd_model, guide, [(files["kohya"], 1.0), (files["peft"], 0.5)])
    img_one = _edit(engine, sd_model, guide, [(files["kohya"], 1.0)])
    assert not np.array_equal(img_both, img_one)
    # The same file twice adds its weights: 0.5 + 0.5 is 1.0.
    twice = _edit(engine, sd_model, guide, [(files["kohya"], 0.5), (files["kohya"], 0.5)])
    assert np.array_equal(twice, img_one)


@pytest.mark.parametrize("name", ["xl", "xl_kohya"])
def test_sdxl_lora_on_sd1_is_refused_and_says_so(engine, sd_model, guide, files, name):
    with pytest.raises(BadInput, match="LoRA for SDXL"):
        _edit(engine, sd_model, guide, [(files[name], 1.0)])
    plain = _edit(engine, sd_model, guide)  # the refused file left nothing behind
    assert np.array_equal(plain, _edit(engine, sd_model, guide, [(files["kohya"], 0.0)]))


def test_sd1_lora_on_sdxl_is_refused(engine, sdxl_model, files):
    g = np.full((32, 32, 3), 128, np.uint8)
    with pytest.raises(BadInput, match="this model is SDXL"):
        _edit(engine, sdxl_model, g, [(files["kohya"], 1.0)])


def test_sdxl_lora_applies_on_sdxl(engine, sdxl_model, files):
    g = np.full((32, 32, 3), 128, np.uint8)
    g[8:24, 8:24] = (200, 40, 40)
    plain = _edit(engine, sdxl_model, g)
    assert not np.array_equal(plain, _edit(engine, sdxl_model, g, [(files["xl"], 1.0)]))
    assert np.array_equal(plain, _edit(engine, sdxl_model, g, [(files["xl"], 0.0)]))


def test_files_that_are_not_loras_are_refused_by_what_they_are(engine, sd_model, guide, tmp_path):
    ckpt = standins.export_single_file(sd_model, tmp_path / "model.safetensors")
    with pytest.raises(BadInput, match="not a LoRA: it is a full Stable Diffusion checkpoint"):
        _edit(engine, sd_model, guide, [(ckpt, 1.0)])
    pickle = tmp_path / "old.ckpt"
    torch.save({"lora_unet_x.lora_down.weight": torch.zeros(1)}, pickle)
    with pytest.raises(BadInput, match="pickles"):
        _edit(engine, sd_model, guide, [(pickle, 1.0)])
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(BadInput, match="not a readable .safetensors"):
        _edit(engine, sd_model, guide, [(junk, 1.0)])
    loha = tmp_path / "loha.safetensors"
    save_file({"lora_unet_a.hada_w1_a": torch.zeros(2, 2)}, str(loha))
    with pytest.raises(BadInput, match="LoHa"):
        _edit(engine, sd_model, guide, [(loha, 1.0)])
    with pytest.raises(BadInput, match="not found"):
        _edit(engine, sd_model, guide, [(tmp_path / "missing.safetensors", 1.0)])


def test_lora_on_a_pixel_model_is_refused(engine, ddpm_model, files):
    g = np.full((32, 32, 3), 100, np.uint8)
    with pytest.raises(BadInput, match="apply to Stable Diffusion models"):
        engine.sdedit(
            SDEditRequest(
                guide=g, model=str(ddpm_model), steps=4, device="cpu", loras=[Lora(str(files["kohya"]))]
            )
        )


def test_a_bare_name_is_found_in_the_models_folder(engine, sd_model, guide, files, tmp_path, monkeypatch):
    folder = tmp_path / "models" / "loras"
    folder.mkdir(parents=True)
    (folder / "mine.safetensors").write_bytes(files["kohya"].read_bytes())
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(tmp_path / "models"))
    by_name = _edit(engine, sd_model, guide, [("mine.safetensors", 1.0)])
    assert np.array_equal(by_name, _edit(engine, sd_model, guide, [(files["kohya"], 1.0)]))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a.safetensors", Lora("a.safetensors", 1.0)),
        ("a.safetensors:0.5", Lora("a.safetensors", 0.5)),
        ("a.safetensors:-1", Lora("a.safetensors", -1.0)),
        (r"C:\loras\b.safetensors:2", Lora(r"C:\loras\b.safetensors", 2.0)),
        (r"C:\loras\b.safetensors", Lora(r"C:\loras\b.safetensors", 1.0)),
        ("odd:name.safetensors", Lora("odd:name.safetensors", 1.0)),
    ],
)
def test_lora_flag_reads_file_and_weight(text, expected):
    p = argparse.ArgumentParser()
    names = add_request_options(p, SDEditRequest)
    assert request_fields(p.parse_args(["--lora", text]), names)["loras"] == (expected,)


def test_lora_flag_repeats_and_defaults_to_none(guide):
    p = argparse.ArgumentParser()
    names = add_request_options(p, SDEditRequest)
    args = request_fields(p.parse_args(["--lora", "a.safetensors", "--lora", "b.safetensors:0.3"]), names)
    assert args["loras"] == (Lora("a.safetensors"), Lora("b.safetensors", 0.3))
    assert request_fields(p.parse_args([]), names)["loras"] == ()
    SDEditRequest(guide=guide, **args).validate()


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), 11.0, -11.0])
def test_bad_weights_are_refused_at_the_edge(guide, weight):
    with pytest.raises(BadInput, match="LoRA weight"):
        SDEditRequest(guide=guide, loras=[Lora("a.safetensors", weight)]).validate()


def test_too_many_loras_are_refused(guide):
    with pytest.raises(BadInput, match="at most 8 LoRA"):
        SDEditRequest(guide=guide, loras=[Lora(f"{i}.safetensors") for i in range(9)]).validate()


def test_a_dropped_model_takes_its_adapters_with_it(sd_model, sd_ddim_model, guide, files):
    import gc
    import weakref

    from noisebrush.core.engine.engine import Engine

    engine = Engine(max_priors=1)
    _edit(engine, sd_model, guide, [(files["kohya"], 1.0)])
    unet = weakref.ref(engine.prior(str(sd_model), "cpu").unet)
    assert unet() in loras._LOADED
    engine.prior(str(sd_ddim_model), "cpu")  # evicts the first
    gc.collect()
    assert unet() is None  # nothing of the LoRA bookkeeping kept the dropped model's UNet alive
