"""Single-file checkpoints (A1111-style Stable Diffusion 1.x/2.x/SDXL): detect, refuse pickled code, load offline.

A single file holds weights only; the configs and tokenizers come from a diffusers folder of the same family,
found (never downloaded) in NOISEBRUSH_CONFIG or the local hub cache.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from noisebrush.core.engine.loading import prior_to, quiet_libraries
from noisebrush.core.engine.priors import Prior
from noisebrush.core.errors import BadInput

# family -> (diffusers pipeline class, hub repos whose configs fit, newest first)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sd1": (
        "StableDiffusionPipeline",
        (
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "runwayml/stable-diffusion-v1-5",
            "CompVis/stable-diffusion-v1-4",
        ),
    ),
    "sd2": (
        "StableDiffusionPipeline",
        ("stabilityai/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1-base"),
    ),
    "sdxl": ("StableDiffusionXLPipeline", ("stabilityai/stable-diffusion-xl-base-1.0",)),
}


def read_keys(path: Path) -> list[str]:
    """The tensor names in a checkpoint, without running any pickled code."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return list(f.keys())
        except Exception as e:  # safetensors raises its own error types for damaged headers
            raise BadInput(f"checkpoint {path} is not a valid safetensors file: {e}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError) as e:
        raise BadInput(
            f"checkpoint {path} is a pickle that needs code to load, which NoiseBrush never runs; "
            f"convert it to .safetensors ({str(e).splitlines()[0]})"
        ) from None
    except (OSError, EOFError) as e:
        raise BadInput(f"checkpoint {path} could not be read: {e}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInput(f"checkpoint {path} holds no tensor dictionary")
    return list(state)


def detect_family(keys: list[str]) -> str:
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"  # OpenCLIP text encoder
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return "sd1"
    raise BadInput(
        "checkpoint is not a Stable Diffusion 1.x, 2.x or SDXL file (no text encoder weights found)"
    )


def config_folder(family: str) -> Path:
    """A diffusers folder whose configs and tokenizers fit the family: NOISEBRUSH_CONFIG, else the hub cache."""
    env = os.environ.get("NOISEBRUSH_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not (path / "model_index.json").exists():
            raise BadInput(f"NOISEBRUSH_CONFIG={path} is not a diffusers folder (no model_index.json)")
        return path
    from noisebrush.core.engine.sources import _hub_snapshot

    repos = FAMILIES[family][1]
    for repo in repos:
        found = _hub_snapshot(repo)
        if found is not None:
            return found
    raise BadInput(
        f"a single {family} checkpoint needs the configs and tokenizer of a diffusers folder of its family; "
        f"none is in the hub cache ({', '.join(repos)}). Set NOISEBRUSH_CONFIG to such a folder (weights not needed)"
    )


def load_single_file(path: Path, device: torch.device, dtype: torch.dtype) -> Prior:
    quiet_libraries()
    family = detect_family(read_keys(path))
    import diffusers
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    pipe_cls: Any = getattr(diffusers, FAMILIES[family][0])
    config = config_folder(family)
    try:
        pipe = pipe_cls.from_single_file(str(path), config=str(config), local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as e:
        raise BadInput(
            f"could not load {path} as {family} with configs from {config}: {str(e).splitlines()[0]}"
        ) from None
    parts: dict[str, Any] = {
        n: getattr(pipe, n, None)
        for n in ("unet", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")
    }
    for m in (parts["unet"], parts["vae"], parts["text_encoder"], parts["text_encoder_2"]):
        if m is not None:
            m.eval().requires_grad_(False)
    prior = Prior(
        path=path,
        scheduler_config=dict(pipe.scheduler.config),
        scheduler_class=type(pipe.scheduler),
        device=device,
        dtype=dtype,
        settings={
            "force_zeros_for_empty_prompt": bool(getattr(pipe.config, "force_zeros_for_empty_prompt", True))
        },
        **parts,
    )
    prior_to(prior, device)
    return prior
