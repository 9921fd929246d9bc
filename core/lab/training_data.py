"""Training data of a pixel-space prior: the procedural scenes or a folder of the user's images (captions
from an optional `name.txt` beside each image). Every batch is a function of (seed, step), so a resumed
run sees exactly the batches it would have seen."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from noisebrush.core.engine.images import flatten, load_image
from noisebrush.core.errors import BadInput
from noisebrush.core.lab import scenes
from noisebrush.core.lab.train_config import TrainConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class ProceduralData:
    """Batches of procedural scenes with captions drawn from their visible concept words."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.vocabulary = list(scenes.VOCABULARY)

    def batch(self, rng: np.random.Generator) -> tuple[np.ndarray, list[list[str]]]:
        size = self.config.size
        images, words = [], []
        for _ in range(self.config.batch):
            if rng.random() < self.config.crop_share:
                # Crops of larger renders teach the local look of scenes painted at bigger sizes (SDEdit guides).
                big = scenes.render(rng, 2 * size)
                y, x = rng.integers(0, size + 1, 2)
                scene = big.crop(int(y), int(x), size, size)
            else:
                scene = scenes.render(rng, size)
            image = scene.image[:, ::-1] if rng.random() < 0.5 else scene.image
            images.append(image)
            words.append(scene.concepts)
        return np.stack(images), words


class FolderData:
    """Batches of random square crops from a folder of images; `name.txt` beside `name.png` is its caption."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        folder = Path(config.data)
        self.paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise BadInput(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
        self.captions = [_read_caption(p) for p in self.paths]
        self.vocabulary = sorted({w for c in self.captions for w in c})

    def batch(self, rng: np.random.Generator) -> tuple[np.ndarray, list[list[str]]]:
        size = self.config.size
        images, words = [], []
        for i in rng.integers(0, len(self.paths), self.config.batch):
            # the engine's reader: bombs, truncation and odd modes fail with a message naming the file
            im = Image.fromarray(flatten(load_image(self.paths[i], "training image")))
            # Random scale between "whole image" and "native pixels", then a random square crop.
            short = min(im.size)
            scale = rng.uniform(size / short, max(size / short, 1.0))
            im = im.resize(
                (max(size, round(im.width * scale)), max(size, round(im.height * scale))),
                Image.Resampling.LANCZOS,
            )
            x, y = rng.integers(0, im.width - size + 1), rng.integers(0, im.height - size + 1)
            crop = np.asarray(im.crop((int(x), int(y), int(x) + size, int(y) + size)))
            images.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
            words.append(self.captions[i])
        return np.stack(images), words


def _read_caption(path: Path) -> list[str]:
    text = path.with_suffix(".txt")
    if not text.exists():
        return []
    return re.findall(r"[a-z]+", text.read_text().lower())


def make_data(config: TrainConfig) -> ProceduralData | FolderData:
    return ProceduralData(config) if config.data == "procedural" else FolderData(config)


def captions(words: list[list[str]], rng: np.random.Generator, keep: float, dropout: float) -> list[str]:
    """Classifier-free training captions: "" with probability `dropout`, else a shuffled random subset of the
    image's true words (at least one), so single-word prompts and any combination are all seen in training."""
    out = []
    for w in words:
        if not w or rng.random() < dropout:
            out.append("")
            continue
        chosen = [x for x in w if rng.random() < keep] or [w[int(rng.integers(len(w)))]]
        out.append(" ".join(rng.permutation(chosen).tolist()))
    return out


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], the DDPM data range."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
