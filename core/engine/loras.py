"""LoRA files on a Stable Diffusion prior, through diffusers' own loader (peft adapters, never merged).

A file is read once per prior (kept by path, size and modification time, the least recently used dropped
past MAX_LOADED) and is checked before diffusers sees it: only `.safetensors` (a pickle can run code), only
LoRA weights, and only for the prior's family. Each run turns on the adapters it names at its weights and
turns every adapter off when it ends, so a run without LoRAs computes exactly what the prior computes
without any loaded (peft's disabled layers call the base layer alone), and so does a weight of 0.
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.requests import Lora, excerpt
from noisebrush.core.engine.sources import LORA_FOLDER, models_dir
from noisebrush.core.errors import BadInput

MAX_LOADED = 8  # adapters kept on one prior; each is a few MB to a few hundred MB

# What a safetensors file that is not a LoRA holds, told by its key names.
_NOT_LORA = (
    ("model.diffusion_model.", "a full Stable Diffusion checkpoint (use it as --model)"),
    ("controlnet_cond_embedding", "a ControlNet (use it as --controlnet)"),
    ("input_hint_block", "a ControlNet in the original layout (use it as --controlnet)"),
    ("decoder.layers.", "a tiny autoencoder (TAESD); it goes in the models folder for previews"),
    ("encoder.down_blocks.", "a VAE"),
    ("conv_in.weight", "a diffusers model's weights"),
)
# LoRA-like formats diffusers' SD loader does not read.
_OTHER_ADAPTERS = (("hada_w1", "LoHa (LyCORIS)"), ("lokr_w1", "LoKr (LyCORIS)"), (".oft_", "OFT"))
# Keys that only LoRAs for SDXL carry: the second text encoder, and SDXL's original (SGM) UNet block names.
_SDXL_MARKS = ("lora_te2_", "text_encoder_2.", "lora_unet_input_blocks", "lora_unet_output_blocks")
_TRANSFORMER_MARKS = ("transformer.", "lora_transformer_", "double_blocks", "single_blocks")
_CROSS_WIDTH = {768: "Stable Diffusion 1.x", 1024: "Stable Diffusion 2.x", 2048: "SDXL"}


def resolve_lora(path: str) -> Path:
    """A --lora argument to a file: as given, else under the models folder's `loras/`, else in the models
    folder itself."""
    given = Path(path).expanduser()
    for candidate in (given, models_dir() / LORA_FOLDER / path, models_dir() / path):
        if candidate.is_file():
            return candidate.resolve()
    raise BadInput(
        f"LoRA file {excerpt(path)!r} not found (looked as given and in {models_dir() / LORA_FOLDER})"
    )


def family(prior: Prior) -> str:
    """The prior's family in words, for messages."""
    if prior.is_sdxl:
        return "SDXL"
    width = int(getattr(prior.unet.config, "cross_attention_dim", 0) or 0)
    return _CROSS_WIDTH.get(width, f"Stable Diffusion (text width {width})")


def read_lora(path: Path, prior: Prior) -> dict[str, torch.Tensor]:
    """The file's tensors, refused with a message naming what the file is when it is no LoRA for `prior`."""
    if path.suffix.lower() != ".safetensors":
        raise BadInput(
            f"{path.name}: LoRA files must be .safetensors; {path.suffix or 'this'} files are pickles that "
            "can run code when read, and NoiseBrush does not read them"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise BadInput(f"{path.name} is not a readable .safetensors file: {excerpt(str(e))}") from None
    keys = list(state)
    what = _what_it_is(keys)
    if what is not None:
        raise BadInput(f"{path.name} is not a LoRA: it is {what}")
    if any(m in k for k in keys for m in _TRANSFORMER_MARKS) and not any(
        k.startswith("lora_unet") for k in keys
    ):
        raise BadInput(
            f"{path.name} is a LoRA for a transformer model (Flux, SD3); this model is {family(prior)}"
        )
    sdxl_file = any(k.startswith(_SDXL_MARKS) for k in keys)
    if sdxl_file != prior.is_sdxl:
        made_for = "SDXL" if sdxl_file else _width_family(state) or "Stable Diffusion 1.x/2.x"
        raise BadInput(f"{path.name} is a LoRA for {made_for}; this model is {family(prior)}")
    return state


def _what_it_is(keys: list[str]) -> str | None:
    """None for a LoRA; else the kind of file, in words."""
    for mark, name in _OTHER_ADAPTERS:
        if any(mark in k for k in keys):
            return f"a {name} adapter, which only LoRA loading here does not read"
    if any("lora" in k.lower() for k in keys):
        return None
    for mark, name in _NOT_LORA:
        if any(mark in k for k in keys):
            return name
    sample = ", ".join(keys[:2]) if keys else "no tensors at all"
    return f"a file without LoRA weights (keys such as {excerpt(sample)})"


def _width_family(state: dict[str, torch.Tensor]) -> str | None:
    """The family a LoRA was trained for, from the text width its cross-attention keys read."""
    for key, value in state.items():
        if "attn2" in key and "to_k" in key and ("lora_down" in key or "lora_A" in key) and value.ndim == 2:
            width = int(value.shape[1])
            return _CROSS_WIDTH.get(width, f"a model with text width {width}")
    return None


@dataclass
class _Adapters:
    """The adapters loaded on one prior (by file key), and a diffusers pipeline around the prior's modules
    whose LoRA methods load and switch them. Built per run: held here, the pipeline would keep the UNet (this
    table's weak key) alive after the engine drops the prior."""

    names: OrderedDict[tuple[str, int, int], str] = field(default_factory=OrderedDict)
    count: int = 0
    pipe: Any = None


_LOADED: weakref.WeakKeyDictionary[torch.nn.Module, _Adapters] = weakref.WeakKeyDictionary()


def _adapters(prior: Prior) -> _Adapters:
    held = _LOADED.setdefault(prior.unet, _Adapters())
    held.pipe = _pipeline(prior)
    return held


def _pipeline(prior: Prior) -> Any:
    """A diffusers pipeline around the prior's own modules (no copies): the owner of `load_lora_weights`."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    common = dict(vae=prior.vae, unet=prior.unet, scheduler=prior.new_scheduler())
    if prior.is_sdxl:
        return StableDiffusionXLPipeline(
            text_encoder=prior.text_encoder,
            text_encoder_2=prior.text_encoder_2,
            tokenizer=prior.tokenizer,
            tokenizer_2=prior.tokenizer_2,
            **common,
        )
    return StableDiffusionPipeline(
        text_encoder=prior.text_encoder,
        tokenizer=prior.tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
        **common,
    )


def check_prior(prior: Prior) -> None:
    if not (prior.is_latent and prior.takes_text):
        raise BadInput(f"LoRA files apply to Stable Diffusion models; this model is {prior.kind}")


def load(prior: Prior, path: Path) -> str:
    """The adapter name of `path` on `prior`, loading (and checking) the file if it is not loaded yet."""
    check_prior(prior)
    held = _adapters(prior)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in held.names:
        held.names.move_to_end(key)
        return held.names[key]
    state = read_lora(path, prior)
    while len(held.names) >= MAX_LOADED:
        _, old = held.names.popitem(last=False)
        held.pipe.delete_adapters(old)
    held.count += 1
    name = f"lora{held.count}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft's note that a second adapter joins the first
            held.pipe.load_lora_weights(state, adapter_name=name)
    except (RuntimeError, ValueError, KeyError) as e:
        _forget(held, name)
        _all_off(held)
        if "size mismatch" in str(e):
            made_for = _width_family(state) or "another model"
            raise BadInput(
                f"{path.name} does not fit this model: its layers have other sizes (made for {made_for}; "
                f"this model is {family(prior)})"
            ) from None
        raise BadInput(f"{path.name} could not be loaded as a LoRA: {excerpt(str(e), 200)}") from None
    _all_off(held)  # diffusers turns a new adapter on; it waits for a run that asks for it
    if name not in _loaded_names(held):
        raise BadInput(f"{path.name} names no layer of this model ({family(prior)}); nothing would change")
    held.names[key] = name
    return name


def _all_off(held: _Adapters) -> None:
    if _loaded_names(held):
        held.pipe.disable_lora()


def _loaded_names(held: _Adapters) -> set[str]:
    return {n for names in held.pipe.get_list_adapters().values() for n in names}


def _forget(held: _Adapters, name: str) -> None:
    if name in _loaded_names(held):
        held.pipe.delete_adapters(name)


@contextmanager
def applied(prior: Prior, loras: tuple[Lora, ...] | list[Lora]) -> Iterator[None]:
    """The request's LoRAs on while the block runs, every adapter off after it (whatever happens).

    Every file is loaded and checked, also at weight 0; the same file twice adds its weights. Files whose
    weights sum to 0 stay off, so weight 0 is exactly the model without them."""
    if not loras:
        yield
        return
    try:
        weights: dict[str, float] = {}
        for item in loras:
            path, weight = Lora(*item)
            name = load(prior, resolve_lora(path))
            weights[name] = weights.get(name, 0.0) + float(weight)
        active = {n: w for n, w in weights.items() if w != 0.0}
        if not active:
            yield
            return
        held = _adapters(prior)
        held.pipe.set_adapters(list(active), adapter_weights=list(active.values()))
        held.pipe.enable_lora()
        try:
            yield
        finally:
            held.pipe.disable_lora()
    finally:
        if prior.unet in _LOADED:
            _LOADED[prior.unet].pipe = None


def loaded(prior: Prior) -> list[str]:
    """Files loaded on `prior` now, least recently used first (for tests and the Studio's list)."""
    held = _LOADED.get(prior.unet)
    return [] if held is None else [key[0] for key in held.names]
