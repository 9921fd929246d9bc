"""Where models come from: the bundled prior, local folders and files, and the local hub cache."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from noisebrush.core.engine.requests import CONCEPT_SCALE, excerpt
from noisebrush.core.errors import BadInput
from noisebrush.resources import ROOT as RESOURCES

BUNDLED = RESOURCES / "models"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
# Under the models folder: where a bare LoRA or ControlNet name is looked for (core/engine/loras.py, control.py)
# and what a picker lists.
LORA_FOLDER = "loras"
CONTROL_FOLDER = "controlnet"


def models_dir() -> Path:
    """The user's own model folder; NOISEBRUSH_MODELS overrides it."""
    env = os.environ.get("NOISEBRUSH_MODELS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "noisebrush" / "models"


@dataclass(frozen=True)
class ModelInfo:
    name: str  # what to pass as --model
    kind: str  # pixel-vp, pixel-ve, latent-vp, sdxl, single-file, ...
    path: Path
    size_bytes: int
    source: str  # bundled, local, hub-cache


def model_settings(path: Path) -> dict:
    """A model folder's `noisebrush.json` (default steps and guidance, closed vocabulary); {} when it has none
    (single files, folders from elsewhere). Read without loading any weights."""
    settings = path / "noisebrush.json"
    return json.loads(settings.read_text()) if path.is_dir() and settings.exists() else {}


def concept_scale(settings: dict) -> float:
    """The SEGA scale for concepts that leave theirs unset, from a model's `noisebrush.json` settings."""
    return float(settings.get("default_concept_scale", CONCEPT_SCALE))


def model_concept_scale(name: str) -> float:
    """`concept_scale` of a --model argument, read without loading any weights (or importing torch)."""
    return concept_scale(model_settings(resolve_model(name)))


def resolve_model(name: str) -> Path:
    """A --model argument to a folder or single file on disk, without touching the network.

    Accepts `default` (the bundled prior), a name under resources/models or the user's models folder,
    a path to a diffusers folder or a single checkpoint file, or a hub id already in the local cache.
    """
    if not name:
        raise BadInput("no model given; use 'default' or a path (see `noisebrush models`)")
    if name == "default":
        path = BUNDLED / "default"
        if not (path / "model_index.json").exists():
            raise BadInput(
                f"the bundled prior is not installed at {path}; train it with `noisebrush train` "
                "or pass --model PATH to a diffusers folder or checkpoint"
            )
        return path
    candidate = Path(name).expanduser()
    if candidate.exists():
        return candidate.resolve()
    for base in (BUNDLED, models_dir()):
        if (base / name).exists():
            return base / name
    if "/" in name and not name.startswith((".", "/")):
        cached = _hub_snapshot(name)
        if cached is not None:
            return cached
        raise BadInput(
            f"model {name!r} is not a local path and not in the local hub cache; NoiseBrush never downloads. "
            "Put the model in a folder and pass its path, or fill the cache where you have network access"
        )
    raise BadInput(
        f"model {name!r} not found: no such file or folder (see `noisebrush models` for what is here)"
    )


def model_folders() -> list[Path]:
    """The folders a server request's model may come from: the bundled models, the user's models folder and
    the local hub cache (where `noisebrush models` looks)."""
    folders = [BUNDLED, models_dir()]
    cache = hub_cache()
    if cache is None:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE

            cache = HF_HUB_CACHE
        except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
            cache = None
    if cache is not None:
        folders.append(Path(cache).expanduser())
    return [Path(os.path.abspath(f)) for f in folders]


def model_in_folders(name: str) -> Path | None:
    """`name` as a path inside one of `model_folders()` that exists, else None.

    ".." is collapsed before the check, so a name cannot climb out of a folder; links the owner put inside
    a models folder are followed like any model there.
    """
    if not name or "\0" in name:
        return None
    given = Path(name).expanduser()
    for folder in model_folders():
        path = Path(os.path.abspath(given if given.is_absolute() else folder / given))
        if path.is_relative_to(folder) and path != folder and path.exists():
            return path
    return None


SCHEDULE_STEPS = 1000  # diffusers' num_train_timesteps default, and every Stable Diffusion checkpoint's


def schedule_steps(path: Path) -> int:
    """How many timesteps a model's schedule has (at most as many sampling steps), read from its scheduler
    config without loading weights; SCHEDULE_STEPS for a single file or a folder that does not say."""
    config = path / "scheduler" / "scheduler_config.json"
    try:
        steps = json.loads(config.read_text()).get("num_train_timesteps") if path.is_dir() else None
    except (OSError, ValueError, AttributeError):
        steps = None
    return steps if isinstance(steps, int) and steps > 0 else SCHEDULE_STEPS


def check_steps(steps: int | None, most: int, model: str) -> None:
    """No more sampling steps than the model's schedule has timesteps (`most`, from `schedule_steps`): one
    rule for the server's submit and the engine, so the CLI and the app fail as early and as clearly."""
    if steps is not None and steps > most:
        raise BadInput(
            f"steps must be at most {most}, the timesteps of model {excerpt(model)!r}'s schedule; got {steps}"
        )


def _hub_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=hub_cache()))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def hub_cache() -> str | None:
    """The hub cache the environment names now; huggingface_hub reads HF_HUB_CACHE once, at its import."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def folder_kind(path: Path) -> str:
    """A short description of a diffusers folder's family, read from its configs alone."""
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "unknown"
    sched = (index.get("scheduler") or [None, ""])[1]
    if index.get("vae"):
        return "sdxl" if index.get("text_encoder_2") else "latent-vp"
    kind = "pixel-ve" if sched == "ScoreSdeVeScheduler" else "pixel-vp"
    return kind + ("+text" if index.get("text_encoder") else "")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _scan(base: Path, source: str) -> list[ModelInfo]:
    found: list[ModelInfo] = []
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        if (entry / "model_index.json").exists():
            found.append(ModelInfo(entry.name, folder_kind(entry), entry, _size(entry), source))
        elif entry.is_file() and entry.suffix.lower() in SINGLE_FILE_SUFFIXES:
            found.append(ModelInfo(entry.name, "single-file", entry, _size(entry), source))
    return found


def list_models() -> list[ModelInfo]:
    """Everything usable offline: bundled, the user's models folder, and diffusers repos in the hub cache."""
    found = []
    for info in _scan(BUNDLED, "bundled"):
        found.append(
            ModelInfo("default", info.kind, info.path, info.size_bytes, info.source)
            if info.name == "default"
            else info
        )
    found += _scan(models_dir(), "local")
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir(hub_cache())
    except Exception:  # an absent or unreadable cache simply has nothing to list
        return found
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            if (rev.snapshot_path / "model_index.json").exists():
                found.append(
                    ModelInfo(
                        repo.repo_id,
                        folder_kind(rev.snapshot_path),
                        rev.snapshot_path,
                        repo.size_on_disk,
                        "hub-cache",
                    )
                )
                break
    return found


def list_loras() -> list[Path]:
    """The LoRA files a picker offers: every `.safetensors` under the models folder's `loras/`, subfolders
    included (the only kind loras.py reads), sorted by path."""
    base = models_dir() / LORA_FOLDER
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix.lower() == ".safetensors" and p.is_file())


def list_controlnets() -> list[Path]:
    """The ControlNets a picker offers: the diffusers folders (with `config.json`) and `.safetensors` files in
    the models folder's `controlnet/`, sorted by name."""
    base = models_dir() / CONTROL_FOLDER
    if not base.is_dir():
        return []
    return [
        e
        for e in sorted(base.iterdir())
        if (e / "config.json").is_file() or (e.is_file() and e.suffix.lower() == ".safetensors")
    ]
