"""ControlNet guides in SDEdit (Zhang et al. 2023), as diffusers' ControlNet img2img pipelines apply them.

At every UNet call the ControlNet sees the same latents, timestep and prompt embeddings (and SDXL's added
conditions) as the UNet, plus the control image in [0, 1] at the latents' pixel size; its residuals, scaled by
`control_scale`, are added to the UNet's skip connections (no guess mode; control from the first step to the
last). The control image is the request's own, or edges or scribble lines made from the guide
(core/engine/control_maps.py), cut to the region the run works on and sized as the guide is at each stage.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from noisebrush.core.engine.control_maps import MAPS
from noisebrush.core.engine.images import flatten
from noisebrush.core.engine.masks import pad_to_multiple, work_box
from noisebrush.core.engine.plan import stages
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.requests import SDEditRequest, excerpt
from noisebrush.core.engine.sources import CONTROL_FOLDER, models_dir
from noisebrush.core.errors import BadInput

# One ControlNet kept per prior: (path, size, mtime) -> model.
_LOADED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[str, int, int], Any]] = (
    weakref.WeakKeyDictionary()
)


def resolve_controlnet(name: str) -> Path:
    given = Path(name).expanduser()
    for candidate in (given, models_dir() / CONTROL_FOLDER / name, models_dir() / name):
        if candidate.exists():
            return candidate.resolve()
    raise BadInput(
        f"ControlNet {excerpt(name)!r} not found (looked as given and in {models_dir() / CONTROL_FOLDER})"
    )


def load_controlnet(path: Path, prior: Prior) -> Any:
    """A ControlNetModel from a diffusers folder, or from one .safetensors in diffusers' layout (its config
    derived from the prior's UNet, as diffusers' `ControlNetModel.from_unet` derives it); checked against the
    prior's family."""
    from diffusers import ControlNetModel

    if not (prior.is_latent and prior.takes_text):
        raise BadInput(f"ControlNet guides apply to Stable Diffusion models; this model is {prior.kind}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"ControlNet folder {path} has no config.json (expected a diffusers folder)")
        try:
            net = ControlNetModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise BadInput(f"{path} could not be loaded as a ControlNet: {excerpt(str(e), 200)}") from None
    else:
        net = _from_file(path, prior)
    _check_fits(net, prior, path)
    return net.to(prior.device, prior.dtype).eval().requires_grad_(False)


def _from_file(path: Path, prior: Prior) -> Any:
    from diffusers import ControlNetModel

    if path.suffix.lower() != ".safetensors":
        raise BadInput(f"{path.name}: ControlNet files must be .safetensors (pickles can run code when read)")
    from safetensors.torch import load_file

    state = load_file(str(path))
    if any(k.startswith("input_hint_block") or "control_model." in k for k in state):
        raise BadInput(
            f"{path.name} is a ControlNet in the original (lllyasviel) layout; use its diffusers folder "
            "(config.json and diffusion_pytorch_model.safetensors) instead"
        )
    if not any(k.startswith("controlnet_cond_embedding.") for k in state):
        raise BadInput(f"{path.name} is not a ControlNet (it has no controlnet_cond_embedding weights)")
    net = ControlNetModel.from_unet(
        prior.unet,
        conditioning_embedding_out_channels=_embedding_channels(state),
        load_weights_from_unet=False,
    )
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        raise BadInput(
            f"{path.name} does not fit this model's ControlNet shape; it was made for another model family"
        ) from None
    return net


def _embedding_channels(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The widths of the control image's encoder, read from its weights: conv_in, then every second block
    (each level is a same-width convolution and a strided one to the next width)."""
    first = state["controlnet_cond_embedding.conv_in.weight"].shape[0]
    widths = [int(first)]
    i = 1
    while f"controlnet_cond_embedding.blocks.{i}.weight" in state:
        widths.append(int(state[f"controlnet_cond_embedding.blocks.{i}.weight"].shape[0]))
        i += 2
    return tuple(widths)


def _check_fits(net: Any, prior: Prior, path: Path) -> None:
    ours = int(prior.unet.config.cross_attention_dim)
    theirs = int(net.config.cross_attention_dim)
    xl_net = net.config.addition_embed_type == "text_time"
    reduction = 2 ** (len(net.config.conditioning_embedding_out_channels) - 1)
    if reduction != prior.vae_factor:
        raise BadInput(
            f"ControlNet {path.name} reads control images at 1/{reduction} of the latents' pixel size; this "
            f"model's VAE works at 1/{prior.vae_factor}: made for another model"
        )
    if theirs != ours or xl_net != prior.is_sdxl:
        from noisebrush.core.engine.loras import family

        made = "SDXL" if xl_net else f"a model with text width {theirs}"
        raise BadInput(f"ControlNet {path.name} is for {made}; this model is {family(prior)}")


def _cached(prior: Prior, path: Path) -> Any:
    stat = path.stat() if path.is_file() else (path / "config.json").stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    held = _LOADED.get(prior.unet)
    if held is not None and held[0] == key:
        return held[1]
    net = load_controlnet(path, prior)
    _LOADED[prior.unet] = (key, net)
    return net


class ControlledUNet(torch.nn.Module):
    """The prior's UNet with a ControlNet's residuals added; everything else reads through to the UNet."""

    def __init__(self, unet: Any, controlnet: Any, control_at: Any, scale: float) -> None:
        super().__init__()
        self.unet = unet
        self.controlnet = controlnet
        self.control_at = control_at  # (pixel h, w) -> (1, 3, h, w) control image in [0, 1]
        self.scale = scale

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["unet"], name)

    def forward(self, x: torch.Tensor, t: Any, encoder_hidden_states: Any = None, **kwargs: Any) -> Any:
        f = self.control_at.factor
        image = self.control_at((x.shape[-2] * f, x.shape[-1] * f)).to(x.device, x.dtype)
        down, mid = self.controlnet(
            x,
            t,
            encoder_hidden_states=encoder_hidden_states,
            controlnet_cond=image.expand(x.shape[0], -1, -1, -1),
            conditioning_scale=self.scale,
            guess_mode=False,
            added_cond_kwargs=kwargs.get("added_cond_kwargs"),
            return_dict=False,
        )
        return self.unet(
            x,
            t,
            encoder_hidden_states=encoder_hidden_states,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            **kwargs,
        )


class ControlImage:
    """The control image of one run's region, at each size a stage asks for (exactly as the guide is sized
    there: the region itself, or the composition size reflect-padded to the prior's multiple)."""

    def __init__(self, crop: np.ndarray, stage_sizes: list[tuple[int, int]], multiple: int, factor: int):
        self.crop, self.stage_sizes, self.multiple, self.factor = crop, stage_sizes, multiple, factor
        self._made: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, size: tuple[int, int]) -> torch.Tensor:
        if size not in self._made:
            self._made[size] = self._make(size)
        return self._made[size]

    def _make(self, size: tuple[int, int]) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.crop)).permute(2, 0, 1)[None].float()
        if size == tuple(x.shape[-2:]):
            return x / 255.0
        m = self.multiple
        for s in self.stage_sizes:
            if (-(-s[0] // m) * m, -(-s[1] // m) * m) == size:
                small = F.interpolate(x, size=s, mode="area").clamp_(0, 255).round_()
                return pad_to_multiple(small / 255.0, m)[0]
        raise BadInput(
            "a ControlNet cannot follow this run's tiles yet; give it a smaller region or a larger memory budget"
        )


def control_crop(req: SDEditRequest, prior: Prior) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The control image cut to the region the engine works on, and that run's stage sizes."""
    box = work_box(req.mask, req.guide.shape[:2], req.context, prior.multiple)
    if req.control is not None:
        crop = flatten(req.control[box.slices])
    else:
        crop = MAPS[req.control_map](flatten(req.guide[box.slices]))
    plan = stages(
        (box.h, box.w), req.strength, prior.work_size, req.work_size, req.refine_strength, prior.settings
    )
    return crop, [s.size for s in plan]


@contextmanager
def applied(prior: Prior, req: SDEditRequest) -> Iterator[None]:
    """The request's ControlNet on the prior's UNet while the block runs; the plain UNet back after."""
    if not req.controlnet:
        yield
        return
    net = _cached(prior, resolve_controlnet(req.controlnet))
    crop, sizes = control_crop(req, prior)
    unet = prior.unet
    prior.unet = ControlledUNet(
        unet, net, ControlImage(crop, sizes, prior.multiple, prior.vae_factor), req.control_scale
    )
    try:
        yield
    finally:
        prior.unet = unet
