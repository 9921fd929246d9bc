"""ControlNet guides: the same image as diffusers' ControlNet img2img pipelines for the same seed (within
1/255), control images made from the guide, the plain UNet back after a run, and wrong files refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from noisebrush.bench import standins
from noisebrush.core.engine.control_maps import edges, scribble
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def controlnet(sd_model, tmp_path_factory):
    return standins.tiny_controlnet(tmp_path_factory.mktemp("cn") / "controlnet", sd_model, seed=2)


@pytest.fixture(scope="module")
def picture():
    rng = np.random.RandomState(3)
    img = np.repeat(np.repeat((rng.rand(8, 8, 3) * 255).astype(np.uint8), 8, 0), 8, 1)
    return img  # 64x64 blocks: edges to find


def _ours(engine, model, guide, **kw):
    base = dict(
        guide=guide, model=str(model), strength=0.6, steps=10, guidance=7.5, prompt="a red barn", seed=11
    )
    return engine.sdedit(SDEditRequest(device="cpu", **{**base, **kw}))[0]


def _diffusers(pipe_cls, model, controlnet, guide, control, scale=1.0, **kw):
    from diffusers import ControlNetModel

    net = ControlNetModel.from_pretrained(controlnet)
    pipe = pipe_cls.from_pretrained(model, controlnet=net, safety_checker=None, feature_extractor=None, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe(
        "a red barn",
        image=Image.fromarray(guide),
        control_image=Image.fromarray(control),
        strength=0.6,
        num_inference_steps=10,
        guidance_scale=7.5,
        controlnet_conditioning_scale=scale,
        generator=torch.Generator("cpu").manual_seed(11),
        output_type="np",
    ).images[0]


def _within_one_level(ours, ref):
    diff = np.abs(ours.astype(np.float64) / 255 - ref.astype(np.float64))
    assert diff.max() <= 1 / 255 + 1e-6, f"max difference {diff.max() * 255:.3f}/255"


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_sd_controlnet_matches_diffusers_img2img(engine, sd_model, controlnet, picture, scale):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    control = np.zeros_like(picture)
    control[16:48, 20:24] = 255
    control[30:34, 8:56] = 255
    ref = _diffusers(StableDiffusionControlNetImg2ImgPipeline, sd_model, controlnet, picture, control, scale)
    ours = _ours(engine, sd_model, picture, controlnet=str(controlnet), control=control, control_scale=scale)
    _within_one_level(ours, ref)
    plain = _ours(engine, sd_model, picture)
    assert np.abs(ours.astype(int) - plain).max() > 4, "the ControlNet steered nothing"
    # The plain UNet is back after the run.
    assert type(engine.prior(str(sd_model), "cpu").unet).__name__ == "UNet2DConditionModel"
    assert np.array_equal(_ours(engine, sd_model, picture), plain)


@pytest.mark.parametrize("kind, make", [("edges", edges), ("scribble", scribble)])
def test_control_made_from_the_guide_is_that_map(engine, sd_model, controlnet, picture, kind, make):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    control = make(picture)
    assert control.dtype == np.uint8 and 0 < (control > 0).mean() < 0.8  # 8 px blocks: lines everywhere
    ref = _diffusers(StableDiffusionControlNetImg2ImgPipeline, sd_model, controlnet, picture, control)
    _within_one_level(_ours(engine, sd_model, picture, controlnet=str(controlnet), control_map=kind), ref)


def test_control_scale_zero_is_no_controlnet(engine, sd_model, controlnet, picture):
    plain = _ours(engine, sd_model, picture)
    assert np.array_equal(
        _ours(engine, sd_model, picture, controlnet=str(controlnet), control_scale=0.0), plain
    )


def test_single_file_controlnet_is_the_folder(engine, sd_model, controlnet, picture, tmp_path):
    from diffusers import ControlNetModel
    from safetensors.torch import save_file

    state = ControlNetModel.from_pretrained(controlnet).state_dict()
    one = tmp_path / "cn.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(one))
    a = _ours(engine, sd_model, picture, controlnet=str(controlnet))
    assert np.array_equal(_ours(engine, sd_model, picture, controlnet=str(one)), a)


def test_masked_controlled_edit_keeps_unselected_pixels(engine, sd_model, controlnet):
    guide = np.full((96, 96, 3), 120, np.uint8)
    guide[:, 48:] = (30, 90, 200)
    mask = np.zeros((96, 96), np.float32)
    mask[30:60, 30:60] = 1.0
    out = _ours(engine, sd_model, guide, mask=mask, context=8, controlnet=str(controlnet), feather=0)
    assert np.array_equal(out[mask == 0], guide[mask == 0])
    assert not np.array_equal(out[mask == 1], guide[mask == 1])


def test_two_stage_run_sizes_the_control_image_with_the_guide(engine, sd_model, controlnet):
    guide = np.full((100, 132, 3), 80, np.uint8)
    guide[40:60] = 220
    seen = []
    req = SDEditRequest(
        guide=guide, model=str(sd_model), steps=6, seed=1, device="cpu", work_size=48,
        controlnet=str(controlnet),
    )  # fmt: skip
    out = engine.sdedit(req, callback=lambda p: seen.append(p.stage))[0]
    assert out.shape == guide.shape and len(set(seen)) == 2  # composed at 48 px, then refined


def test_wrong_files_are_refused(engine, sd_model, sdxl_model, controlnet, picture, tmp_path):
    with pytest.raises(BadInput, match="not found"):
        _ours(engine, sd_model, picture, controlnet=str(tmp_path / "nothing"))
    lora = standins.tiny_lora(tmp_path / "lora.safetensors", sd_model)
    with pytest.raises(BadInput, match="not a ControlNet"):
        _ours(engine, sd_model, picture, controlnet=str(lora))
    pickle = tmp_path / "cn.pth"
    torch.save({}, pickle)
    with pytest.raises(BadInput, match="pickles"):
        _ours(engine, sd_model, picture, controlnet=str(pickle))
    g = np.full((32, 32, 3), 128, np.uint8)
    with pytest.raises(BadInput, match="this model is SDXL"):
        _ours(engine, sdxl_model, g, controlnet=str(controlnet))


def test_control_image_needs_a_controlnet_and_the_guides_size(picture):
    with pytest.raises(BadInput, match="needs ControlNet weights"):
        SDEditRequest(guide=picture, control=picture.copy()).validate()
    with pytest.raises(BadInput, match="same size"):
        SDEditRequest(guide=picture, control=picture[:32], controlnet="x").validate()


def test_sdxl_controlnet_matches_diffusers_img2img(engine, sdxl_model, tmp_path):
    from diffusers import StableDiffusionXLControlNetImg2ImgPipeline

    net = standins.tiny_controlnet(tmp_path / "cnxl", sdxl_model, seed=5)
    rng = np.random.RandomState(4)
    guide = np.repeat(np.repeat((rng.rand(8, 8, 3) * 255).astype(np.uint8), 8, 0), 8, 1)
    control = edges(guide)
    ref = _diffusers(StableDiffusionXLControlNetImg2ImgPipeline, sdxl_model, net, guide, control)
    _within_one_level(_ours(engine, sdxl_model, guide, controlnet=str(net), control=control), ref)
