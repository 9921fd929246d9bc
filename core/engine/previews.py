"""Step previews through a tiny autoencoder (TAESD, `AutoencoderTiny`) where the user has one.

TAESD decodes a latent x0 prediction to a real image at a small fraction of the full VAE's cost (about 1.2 M
parameters per half); without one, previews use the linear latent-to-RGB map (core/engine/priors.py). Looked
for in the models folder by family: `taesd` (SD 1.x/2.x) or `taesdxl` (SDXL), each a diffusers folder
(config.json and weights, as madebyollin/taesd ships), a single `.safetensors` in diffusers' key layout, or
the decoder in madebyollin's original layout (`taesd_decoder.safetensors`: keys "1.weight", "3.conv.0.weight";
the same modules as diffusers' decoder, numbered one higher because the original counts its input clamp).
Its diffusers config has scaling_factor 1.0: it decodes the UNet's latents as they are, with no VAE scaling.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.sources import models_dir
from noisebrush.core.errors import BadInput


def names(prior: Prior) -> tuple[str, ...]:
    return ("taesdxl",) if prior.is_sdxl else ("taesd",)


def find_tiny_autoencoder(prior: Prior, folder: Path | None = None) -> Path | None:
    """The prior family's TAESD in the models folder (a folder, or a .safetensors file in diffusers' layout
    or madebyollin's decoder file), or None."""
    if not prior.is_latent:
        return None
    base = models_dir() if folder is None else folder
    for name in names(prior):
        if (base / name / "config.json").is_file():
            return base / name
        for file in (f"{name}.safetensors", f"{name}_decoder.safetensors"):
            if (base / file).is_file():
                return base / file
    return None


def diffusers_keys(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """A TAESD file's tensors under diffusers' AutoencoderTiny keys. madebyollin's original decoder file numbers
    its modules from 1 (module 0 is the input clamp, which diffusers applies in forward, outside its layers):
    "N.rest" is diffusers' "decoder.layers.{N-1}.rest", as diffusers' convert_tiny_autoencoder_to_diffusers.py
    maps it. Diffusers' own keys pass unchanged."""
    if not state or not all(k.split(".", 1)[0].isdigit() for k in state):
        return state
    if any(k.startswith("0.") for k in state):  # the encoder's first convolution: the decoder has no module 0
        raise BadInput(f"{name} is TAESD's encoder; previews need its decoder (taesd_decoder.safetensors)")
    return {f"decoder.layers.{int(k.split('.', 1)[0]) - 1}.{k.split('.', 1)[1]}": v for k, v in state.items()}


def load_tiny_autoencoder(path: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """An AutoencoderTiny from a diffusers folder or a single .safetensors (TAESD's own config, which
    diffusers' defaults are); refused with the reason when it is not one."""
    from diffusers import AutoencoderTiny

    if path.is_dir():
        try:
            model = AutoencoderTiny.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise BadInput(f"{path} is not a tiny autoencoder folder: {str(e)[:200]}") from None
    else:
        if path.suffix.lower() != ".safetensors":
            raise BadInput(f"{path.name}: a tiny autoencoder must be .safetensors (pickles are not read)")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise BadInput(f"{path.name} is not a readable .safetensors file: {str(e)[:200]}") from None
        state = diffusers_keys(state, path.name)
        first = state.get("decoder.layers.0.weight")
        if first is None or first.ndim != 4:
            raise BadInput(
                f"{path.name} is not a tiny autoencoder (no decoder weights in diffusers' layout or in "
                "madebyollin's taesd_decoder layout); use the diffusers folder of madebyollin/taesd or taesdxl"
            )
        model = AutoencoderTiny(latent_channels=int(first.shape[1]))  # TAESD3/TAEF1: 16, told apart in attach
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError:  # shapes that differ from TAESD's own
            missing, unexpected = ["decoder"], ["?"]
        if unexpected or any(k.startswith("decoder.") for k in missing):
            raise BadInput(
                f"{path.name} does not fit TAESD's layout (a single file must be TAESD's own shape)"
            )
    return model.to(device, dtype).eval().requires_grad_(False)


class TinyPreview:
    """x0 latents (B, C, h, w) to RGB in [-1, 1] at (h, w) times the VAE's factor, through TAESD."""

    def __init__(self, decoder: Any, path: Path) -> None:
        self.decoder = decoder
        self.path = path

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor, factor: int) -> torch.Tensor:
        rgb = self.decoder.decode(x0.to(self.decoder.dtype), return_dict=False)[0].float()
        size = (x0.shape[-2] * factor, x0.shape[-1] * factor)
        if rgb.shape[-2:] != size:  # a TAESD whose upsampling differs from this VAE's (stand-ins)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
        return rgb.clamp(-1.0, 1.0)


def attach(prior: Prior, folder: Path | None = None) -> None:
    """Give `prior` a TAESD preview decoder when the models folder has one that fits; else keep the linear map.

    A file that does not fit (another family's, a damaged one) warns and is skipped: previews are optional and
    must not stop an edit."""
    path = find_tiny_autoencoder(prior, folder)
    if path is None:
        return
    try:
        decoder = load_tiny_autoencoder(path, prior.device, prior.dtype)
    except BadInput as e:
        warnings.warn(f"previews use the linear map: {e}", stacklevel=2)
        return
    channels = int(decoder.config.latent_channels)
    if channels != int(prior.unet.config.in_channels):
        warnings.warn(
            f"previews use the linear map: {path.name} decodes {channels}-channel latents, this model has "
            f"{prior.unet.config.in_channels}",
            stacklevel=2,
        )
        return
    prior.preview_decoder = TinyPreview(decoder, path)
