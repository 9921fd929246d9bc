"""A small concept classifier trained on the procedural scenes; shipped in `resources/models/classifier/`.

It plays two parts in `noisebrush eval`: its pooled activations are the feature space of KID (the usual
Inception weights would have to be downloaded, REFERENCE section 7), and its per-concept sigmoid outputs say
whether a sample conditioned on a word shows that word. It sees only clean scenes in training (never stroke
paintings or model samples), as Inception never saw the images it is used to judge.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from noisebrush.core.lab import scenes

INPUT_SIZE = 64


@dataclass
class ClassifierConfig:
    vocabulary: list[str] = field(default_factory=lambda: list(scenes.VOCABULARY))
    channels: tuple[int, ...] = (16, 32, 64, 128)


class ConceptNet(nn.Module):
    """Four conv stages (two 3x3 conv + GroupNorm + ReLU each, then 2x average pooling) and a linear head.

    `features` is the global average pool of the last two stages, concatenated: mid-level texture and
    high-level layout, the two things KID should compare.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        stages, c_in = [], 3
        for c in config.channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, 3, padding=1),
                    nn.GroupNorm(8, c),
                    nn.ReLU(),
                    nn.Conv2d(c, c, 3, padding=1),
                    nn.GroupNorm(8, c),
                    nn.ReLU(),
                )
            )
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(config.channels[-2] + config.channels[-1], len(config.vocabulary))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= len(self.stages) - 2:
                pooled.append(x.mean(dim=(2, 3)))
            x = F.avg_pool2d(x, 2)
        return torch.cat(pooled, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def prepare(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images of any size to a (B, 3, 64, 64) tensor in [-1, 1]; larger ones are area-resized."""
    out = []
    for im in images:
        im = np.asarray(im)[..., :3]
        if im.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            im = np.asarray(Image.fromarray(im).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BOX))
        out.append(im)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1


@torch.no_grad()
def features(net: ConceptNet, images: np.ndarray | list[np.ndarray], batch: int = 256) -> np.ndarray:
    """(N, D) float64 feature vectors for KID."""
    net.eval()
    chunks = [
        net.features(prepare(images[i : i + batch])).double().numpy() for i in range(0, len(images), batch)
    ]
    return np.concatenate(chunks)


@torch.no_grad()
def probabilities(net: ConceptNet, images: np.ndarray | list[np.ndarray], batch: int = 256) -> np.ndarray:
    """(N, len(vocabulary)) sigmoid probability that each concept is shown."""
    net.eval()
    chunks = [
        torch.sigmoid(net(prepare(images[i : i + batch]))).numpy() for i in range(0, len(images), batch)
    ]
    return np.concatenate(chunks)


def targets(concepts: list[list[str]], vocabulary: list[str]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocabulary)}
    y = np.zeros((len(concepts), len(vocabulary)), np.float32)
    for row, words in enumerate(concepts):
        for w in words:
            y[row, index[w]] = 1.0
    return y


def scene_pool(seed: int, count: int, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Training scenes as the prior sees them: whole scenes and crops of double-size renders (a third)."""
    images, words = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, i, 3])  # a stream of its own, apart from the prior's batches
        if rng.random() < 1 / 3:
            scene = scenes.render(rng, 2 * size)
            y, x = rng.integers(0, size + 1, 2)
            scene = scene.crop(int(y), int(x), size, size)
        else:
            scene = scenes.render(rng, size)
        images.append(scene.image)
        words.append(scene.concepts)
    return np.stack(images), targets(words, list(scenes.VOCABULARY))


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flips, and blur or noise on some images, so model samples (softer, grainier) are judged fairly."""
    out = images.copy()
    for i in range(len(out)):
        if rng.random() < 0.5:
            out[i] = out[i, :, ::-1]
        r = rng.random()
        if r < 0.25:
            blurred = Image.fromarray(out[i]).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
            out[i] = np.asarray(blurred)
        elif r < 0.5:
            noisy = out[i] + rng.normal(0, rng.uniform(2, 10), out[i].shape)
            out[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def train_classifier(
    out: Path,
    steps: int = 4000,
    batch: int = 32,
    pool: int = 8000,
    seed: int = 0,
    lr: float = 2e-3,
    progress: bool = True,
) -> tuple[ConceptNet, dict]:
    """Train on a pool of procedural scenes (binary cross-entropy per concept); report held-out accuracy."""
    torch.manual_seed(seed)
    config = ClassifierConfig()
    net = ConceptNet(config)
    images, y = scene_pool(seed, pool)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    rng = np.random.default_rng([seed, 99])
    started = time.time()
    net.train()
    for _ in tqdm(range(steps), disable=not progress, desc="classifier"):
        idx = rng.integers(0, len(images), batch)
        logits = net(prepare(augment(images[idx], rng)))
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y[idx]))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    report = held_out_accuracy(net, seed + 1)
    report.update(steps=steps, batch=batch, pool=pool, seed=seed, seconds=round(time.time() - started))
    save_classifier(net, out, report)
    return net, report


def held_out_accuracy(net: ConceptNet, seed: int, count: int = 1000) -> dict:
    """Per-concept accuracy (threshold 0.5) on scenes the classifier never saw."""
    images, y = scene_pool(seed + 10_000, count)
    hit = (probabilities(net, images) > 0.5) == (y > 0.5)
    per = {w: round(float(hit[:, i].mean()), 4) for i, w in enumerate(net.config.vocabulary)}
    return {"held_out_accuracy": per, "held_out_mean": round(float(hit.mean()), 4)}


def save_classifier(net: ConceptNet, folder: Path, report: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    config = {**asdict(net.config), "channels": list(net.config.channels), "input_size": INPUT_SIZE}
    (folder / "config.json").write_text(json.dumps({**config, "training": report or {}}, indent=2) + "\n")


def load_classifier(folder: Path) -> ConceptNet:
    data = json.loads((Path(folder) / "config.json").read_text())
    net = ConceptNet(ClassifierConfig(vocabulary=data["vocabulary"], channels=tuple(data["channels"])))
    net.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
    return net.eval()


def default_classifier_path() -> Path:
    from noisebrush.resources import ROOT

    return ROOT / "models" / "classifier"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train the concept classifier used by `noisebrush eval`.")
    parser.add_argument("--out", type=Path, default=default_classifier_path())
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, result = train_classifier(args.out, steps=args.steps, seed=args.seed)
    print(json.dumps(result, indent=2))
