"""SDEdit's evaluation protocol (Meng et al. 2022, section 5.1) on held-out procedural scenes.

Held-out scenes become simulated stroke paintings (`scenes.strokes`); SDEdit runs on each through the engine at
several t0. Realism is KID against other held-out scenes, faithfulness is the L2 distance to the guide (the
Euclidean norm over all pixel values in [0, 1], the paper's definition). Baselines put the numbers in scale: the
stroke paintings themselves, unconditional samples, and two halves of the held-out scenes (the floor a perfect
model would reach). Concept accuracy asks the shipped classifier whether samples conditioned on a word show it.

KID (Binkowski et al. 2018) is the unbiased estimate of the squared MMD with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 (REFERENCE section 7); the features are the shipped classifier's pooled activations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from noisebrush.core.engine.requests import SDEditRequest, check_repeats
from noisebrush.core.lab import classifier as clf
from noisebrush.core.lab import scenes
from noisebrush.core.lab.eval_config import EvalConfig

# ---------------------------------------------------------------- metrics


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for every pair of rows."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between feature sets x (m, d) and y (n, d) with the cubic polynomial kernel:
    mean off-diagonal k(x, x') + mean off-diagonal k(y, y') - 2 mean k(x, y)."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("KID needs at least two feature vectors per set")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def kid_subsets(
    x: np.ndarray, y: np.ndarray, subset: int = 100, repeats: int = 50, seed: int = 0
) -> tuple[float, float]:
    """KID averaged over random equal-size subsets, as the usual implementations report it: (mean, std)."""
    rng = np.random.default_rng(seed)
    size = min(subset, len(x), len(y))
    values = [
        kid(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
        for _ in range(repeats)
    ]
    return float(np.mean(values)), float(np.std(values))


def l2_to_guide(outputs: list[np.ndarray], guides: list[np.ndarray]) -> float:
    """Mean over images of the L2 norm of (output - guide), pixel values in [0, 1] (SDEdit's faithfulness)."""
    dists = [
        np.sqrt(np.sum((o[..., :3].astype(np.float64) / 255 - g[..., :3].astype(np.float64) / 255) ** 2))
        for o, g in zip(outputs, guides, strict=True)
    ]
    return float(np.mean(dists))


# ---------------------------------------------------------------- the protocol


@dataclass
class Row:
    name: str
    kid: float
    kid_std: float
    l2: float | None = None
    seconds_per_image: float | None = None


@dataclass
class EvalReport:
    config: EvalConfig
    rows: list[Row] = field(default_factory=list)
    concepts: dict[str, float] = field(default_factory=dict)
    # the same judgement on held-out scenes that carry the word: what the classifier itself lets through
    concept_recall: dict[str, float] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "config": asdict(self.config),
            "rows": [asdict(r) for r in self.rows],
            "concepts": self.concepts,
            "concept_recall": self.concept_recall,
            "timing": self.timing,
        }


Progress = Callable[[str, int], None]  # (what, images done)


def held_out(config: EvalConfig) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(source scenes of the guides, their stroke paintings, reference scenes), disjoint from each other."""
    source = [s.image for s in _held_out_scenes(config.seed, config.guides, config.size)]
    guides = [scenes.strokes(im, np.random.default_rng([config.seed, i, 2])) for i, im in enumerate(source)]
    reference = [s.image for s in _held_out_scenes(config.seed + 1, config.reference, config.size)]
    return source, guides, reference


def _held_out_scenes(seed: int, count: int, size: int) -> list[scenes.Scene]:
    return [scenes.render(np.random.default_rng([seed, i, 1]), size) for i in range(count)]


def evaluate(
    config: EvalConfig, engine: object | None = None, progress: Progress | None = None
) -> EvalReport:
    """Run the whole protocol; `engine` is a `noisebrush.core.engine.engine.Engine` (made here if None)."""
    if engine is None:
        from noisebrush.core.engine.engine import Engine

        engine = Engine()
    check_repeats(config.repeats)
    net = clf.load_classifier(Path(config.classifier) if config.classifier else clf.default_classifier_path())
    tell = progress or (lambda what, done: None)
    report = EvalReport(config)
    _, guides, reference = held_out(config)
    ref = clf.features(net, reference)
    half = len(ref) // 2
    report.rows.append(Row("held-out scenes, half vs half (floor)", *kid_subsets(ref[:half], ref[half:])))
    report.rows.append(
        Row("stroke paintings (the guides)", *kid_subsets(clf.features(net, guides), ref), l2=0.0)
    )
    for strength in config.strengths:
        started = time.time()
        outputs = sdedit_guides(engine, config, guides, strength)
        seconds = (time.time() - started) / len(guides)
        tell(f"SDEdit t0={strength}", len(outputs))
        row = Row(
            f"SDEdit t0 = {strength:g}",
            *kid_subsets(clf.features(net, outputs), ref),
            l2=l2_to_guide(outputs, guides),
            seconds_per_image=seconds,
        )
        report.rows.append(row)
    if config.unconditional:
        started = time.time()
        samples = generate(engine, config, "", config.unconditional)
        seconds = (time.time() - started) / config.unconditional
        tell("unconditional", len(samples))
        report.rows.append(
            Row(
                "unconditional samples (t0 = 1)",
                *kid_subsets(clf.features(net, samples), ref),
                seconds_per_image=seconds,
            )
        )
    if config.per_concept:
        report.concepts = concept_accuracy(engine, net, config, tell)
        report.concept_recall = concept_recall(net, config, list(report.concepts))
    if config.time_size:
        report.timing = time_sdedit(engine, config)
    return report


def sdedit_guides(
    engine: object, config: EvalConfig, guides: list[np.ndarray], strength: float
) -> list[np.ndarray]:
    """SDEdit of every guide, guide i with seed i: batched when the engine is the real one, else one by one."""
    if config.batch > 1 and hasattr(engine, "prior"):
        out: list[np.ndarray] = []
        for start in range(0, len(guides), config.batch):
            chunk = guides[start : start + config.batch]
            out.extend(
                batched_sdedit(engine, config, chunk, strength, list(range(start, start + len(chunk))))
            )
        return out
    return [_sdedit(engine, config, g, strength, seed=i) for i, g in enumerate(guides)]


def batched_sdedit(
    engine: object, config: EvalConfig, guides: list[np.ndarray], strength: float, seeds: list[int]
) -> list[np.ndarray]:
    """What `Engine.sdedit` computes for each whole-image RGB guide of a pixel-space prior (same prior object,
    conditioning, sampler and per-guide seeded generators), run as one batch: the protocol needs thousands of
    small runs. tests/test_evaluate.py checks it against one `Engine.sdedit` call per guide."""
    import torch

    from noisebrush.core.engine.priors import to_uint8
    from noisebrush.core.engine.samplers import sdedit_vp

    prior = engine.prior(config.model, config.device)  # type: ignore[attr-defined]
    if prior.is_ve or prior.is_latent:
        return [_sdedit(engine, config, g, strength, seed) for g, seed in zip(guides, seeds, strict=True)]
    steps = config.steps or prior.default_steps
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    pixels = torch.from_numpy(np.stack([g[..., :3] for g in guides])).permute(0, 3, 1, 2).float() / 127.5 - 1
    keep = pixels.to(prior.device, prior.dtype)
    cond = prior.condition("", "", prior.default_guidance, len(guides), tuple(keep.shape[-2:]))
    with torch.inference_mode():
        x = sdedit_vp(
            lambda x, t: prior.predict(x, t, cond),
            keep,
            prior.new_scheduler(),
            strength,
            steps,
            generators,
            repeats=config.repeats,
        )
        return list(to_uint8(prior.decode(x)))


def _sdedit(engine: object, config: EvalConfig, guide: np.ndarray, strength: float, seed: int) -> np.ndarray:
    req = SDEditRequest(
        guide=guide,
        model=config.model,
        strength=strength,
        steps=config.steps,
        repeats=config.repeats,
        seed=seed,
        device=config.device,
    )
    return engine.sdedit(req)[0]  # type: ignore[attr-defined]


def generate(
    engine: object, config: EvalConfig, prompt: str, count: int, batch: int = 25
) -> list[np.ndarray]:
    """Samples from pure noise: SDEdit at t0 = 1 starts from N(0, I), so the grey guide plays no part."""
    grey = np.full((config.size, config.size, 3), 128, np.uint8)
    out: list[np.ndarray] = []
    for start in range(0, count, batch):
        req = SDEditRequest(
            guide=grey,
            model=config.model,
            strength=1.0,
            steps=config.steps,
            prompt=prompt,
            guidance=config.guidance,
            seed=config.seed + start,
            variations=min(batch, count - start),
            device=config.device,
        )
        out.extend(engine.sdedit(req))  # type: ignore[attr-defined]
    return out


def concept_accuracy(
    engine: object, net: clf.ConceptNet, config: EvalConfig, tell: Progress
) -> dict[str, float]:
    """For each word: the share of samples prompted with it that the classifier says show it (p > 0.5)."""
    vocabulary = engine.vocabulary(config.model) or []  # type: ignore[attr-defined]
    index = {w: i for i, w in enumerate(net.config.vocabulary)}
    result = {}
    for word in vocabulary:
        if word not in index:
            continue
        samples = generate(engine, config, word, config.per_concept)
        result[word] = float(np.mean(clf.probabilities(net, samples)[:, index[word]] > 0.5))
        tell(f"concept {word}", len(samples))
    return result


def concept_recall(net: clf.ConceptNet, config: EvalConfig, words: list[str]) -> dict[str, float]:
    """For each word: the share of held-out reference scenes drawn with it that the classifier says show it.

    What `concept_accuracy` would give real scenes: a word drawn small, dark or in fog is missed there too.
    """
    reference = _held_out_scenes(config.seed + 1, config.reference, config.size)
    p = clf.probabilities(net, [s.image for s in reference])
    index = {w: i for i, w in enumerate(net.config.vocabulary)}
    result = {}
    for word in words:
        carry = [i for i, s in enumerate(reference) if word in s.concepts]
        if carry:
            result[word] = float(np.mean(p[carry, index[word]] > 0.5))
    return result


def time_sdedit(engine: object, config: EvalConfig) -> dict[str, float]:
    """Seconds for one SDEdit of a `time_size` guide at t0 = 0.5 with the prior's default steps (after a warm-up)."""
    size = config.time_size
    scene = scenes.render(np.random.default_rng([config.seed, 0, 5]), size)
    guide = scenes.strokes(scene.image, np.random.default_rng(0))
    _sdedit(
        engine, EvalConfig(**{**asdict(config), "steps": 2}), guide, 0.5, seed=0
    )  # warm-up: load, allocate
    started = time.time()
    _sdedit(engine, config, guide, 0.5, seed=0)
    return {f"sdedit_{size}px_t0_0.5_seconds": round(time.time() - started, 2)}


# ---------------------------------------------------------------- reporting


def to_markdown(report: EvalReport) -> str:
    c = report.config
    lines = [
        f"Model `{c.model}`, {c.size}x{c.size} images, {c.guides} held-out guides (one sample each), "
        f"{c.reference} held-out reference scenes, steps = {c.steps or 'prior default'}, "
        f"K = {c.repeats} (SDEdit repeats), seed {c.seed}.",
        "KID: unbiased squared MMD, cubic polynomial kernel, features of the NoiseBrush concept classifier "
        "(`resources/models/classifier`), mean ± std over 50 subsets of 100. "
        f"L2: Euclidean norm of (output - guide) over all {c.size}x{c.size}x3 values in [0, 1], mean over guides.",
        "",
        "| images | KID x 10^3 | L2 to guide | s / image |",
        "|---|---:|---:|---:|",
    ]
    for r in report.rows:
        l2 = "" if r.l2 is None else f"{r.l2:.2f}"
        sec = "" if r.seconds_per_image is None else f"{r.seconds_per_image:.2f}"
        lines.append(f"| {r.name} | {1e3 * r.kid:.2f} ± {1e3 * r.kid_std:.2f} | {l2} | {sec} |")
    if report.concepts:
        lines += [
            "",
            f"Concept accuracy ({c.per_concept} samples per word from pure noise, prompt = the word, "
            "shown if the classifier's probability > 0.5). Beside it, the same judgement on the held-out "
            "reference scenes drawn with the word (the classifier's own recall: what real scenes score):",
            "",
            "| concept | shown in prompted samples | shown in held-out scenes with it |",
            "|---|---:|---:|",
        ]
        recall = report.concept_recall
        lines += [f"| {w} | {100 * a:.0f}% | {_percent(recall.get(w))} |" for w, a in report.concepts.items()]
        mean = np.mean(list(report.concepts.values()))
        mean_recall = _percent(float(np.mean(list(recall.values())))) if recall else ""
        lines.append(f"| **mean** | **{100 * mean:.0f}%** | {mean_recall} |")
    if report.timing:
        lines += ["", *(f"- {k}: {v} s" for k, v in report.timing.items())]
    return "\n".join(lines) + "\n"


def _percent(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def write_report(report: EvalReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(to_markdown(report))
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")


GALLERY_STRENGTHS = (0.3, 0.5, 0.7)


def example_sheet(engine: object, config: EvalConfig, path: Path, count: int = 6, zoom: int = 2) -> None:
    """The README's gallery: rows = held-out scene, its stroke guide, then SDEdit at three t0 values; pixels
    enlarged `zoom` times (nearest neighbour, so nothing is smoothed that the model did not make)."""
    source, guides, _ = held_out(EvalConfig(**{**asdict(config), "guides": count, "reference": 2}))
    rows = [np.concatenate(source, 1), np.concatenate(guides, 1)]
    for strength in GALLERY_STRENGTHS:
        rows.append(np.concatenate(sdedit_guides(engine, config, guides, strength), 1))
    sheet = Image.fromarray(np.concatenate(rows, 0))
    sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.Resampling.NEAREST).save(path)
