"""Loading a diffusers-format model folder into a `Prior`, offline: check the folder before anything loads,
build only the components the engine uses, and place them on the device."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch

from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.sources import model_settings
from noisebrush.core.errors import BadInput

# Only these libraries may be named by a model_index.json: no remote or custom code is ever imported.
_LIBRARIES = {"diffusers", "transformers"}
_WEIGHTS = ("*.safetensors", "*.bin")
_MODEL_PARTS = {"unet", "vae", "text_encoder", "text_encoder_2"}


def check_folder(path: Path) -> dict[str, Any]:
    """Read model_index.json and check every component it names is present, before loading anything."""
    index_file = path / "model_index.json"
    if not index_file.exists():
        raise BadInput(f"model folder {path} has no model_index.json (expected a diffusers-format folder)")
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"model folder {path}: model_index.json is not valid JSON: {e}") from None
    missing: list[str] = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = path / name
        if not sub.is_dir():
            missing.append(f"{name}/")
            continue
        if spec[0] not in _LIBRARIES:
            raise BadInput(
                f"model folder {path}: component {name} needs library {spec[0]!r}; only diffusers and transformers load"
            )
        if name in _MODEL_PARTS:
            if not (sub / "config.json").exists():
                missing.append(f"{name}/config.json")
            if not any(any(sub.glob(p)) for p in _WEIGHTS):
                missing.append(f"{name}/*.safetensors")
        elif name.startswith("scheduler") and not (sub / "scheduler_config.json").exists():
            missing.append(f"{name}/scheduler_config.json")
    if "unet" not in index or "scheduler" not in index:
        missing.extend(n for n in ("unet/", "scheduler/") if n.rstrip("/") not in index)
    if missing:
        raise BadInput(f"model folder {path} is incomplete; missing: {', '.join(missing)}")
    return index


def _component(path: Path, name: str, spec: list[str], dtype: torch.dtype) -> Any:
    library, cls_name = spec
    cls = getattr(importlib.import_module(library), cls_name, None)
    if cls is None:
        raise BadInput(f"model folder {path}: {library} has no class {cls_name} (component {name})")
    if name.startswith("tokenizer"):
        return cls.from_pretrained(path / name, local_files_only=True)
    model = cls.from_pretrained(path / name, local_files_only=True)
    return model.to(dtype).eval().requires_grad_(False)


def quiet_libraries() -> None:
    """diffusers and transformers narrate loading on stderr; the CLI's own progress bar is enough."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_prior(path: Path, device: torch.device, dtype: torch.dtype) -> Prior:
    """Load a diffusers-format folder offline; only the components the engine uses are built."""
    quiet_libraries()
    index = check_folder(path)
    settings = model_settings(path)
    sched_spec = index["scheduler"]
    sched_cls = getattr(importlib.import_module("diffusers"), sched_spec[1], None)
    if sched_cls is None:
        raise BadInput(f"model folder {path}: unknown scheduler {sched_spec[1]}")
    scheduler_config = dict(sched_cls.load_config(path / "scheduler"))
    parts: dict[str, Any] = {}
    for name in ("unet", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"):
        spec = index.get(name)
        if isinstance(spec, list) and spec[0] is not None:
            try:
                parts[name] = _component(path, name, spec, dtype)
            except BadInput:
                raise
            except (OSError, ValueError, RuntimeError, KeyError) as e:
                raise BadInput(f"model folder {path}: could not load {name}: {e}") from None
    if "force_zeros_for_empty_prompt" in index:
        settings.setdefault("force_zeros_for_empty_prompt", index["force_zeros_for_empty_prompt"])
    prior = Prior(
        path=path,
        scheduler_config=scheduler_config,
        scheduler_class=sched_cls,
        device=device,
        dtype=dtype,
        settings=settings,
        **parts,
    )
    prior_to(prior, device)
    return prior


def prior_to(prior: Prior, device: torch.device) -> None:
    for part in (prior.unet, prior.vae, prior.text_encoder, prior.text_encoder_2):
        if part is not None:
            part.to(device)
    if prior.vae is not None and getattr(prior.vae.config, "force_upcast", False):
        # SDXL's VAE overflows in float16: it stays in float32, and Prior encodes and decodes in float32
        prior.vae.to(torch.float32)
    # Channels-last convolutions are faster on GPUs. On CPUs (oneDNN) they pay where feature maps are large:
    # 6-15 % per call of the bundled pixel-space UNet and 5-12 % per VAE decode, but a latent UNet at 16x16
    # latents got 5-15 % slower and at 64x64 only 3 % faster, so latent UNets stay contiguous there
    # (docs/PROFILE.md).
    latent_unet = prior.vae is not None
    for conv_net in (prior.vae, None if device.type == "cpu" and latent_unet else prior.unet):
        if conv_net is not None:
            conv_net.to(memory_format=torch.channels_last)


def compile_prior(prior: Prior) -> None:
    """Opt-in torch.compile of the UNet in place (the module keeps its type and config)."""
    prior.unet.compile(mode="max-autotune-no-cudagraphs" if prior.device.type == "cuda" else None)
