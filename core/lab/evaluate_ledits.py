"""LEDITS' edit effect on held-out procedural scenes: does `--add X` add X, does `--remove X` remove it?

For every held-out scene the plain regeneration (LEDITS with no concept, which reproduces the input) is the
"before"; then, for every concept word X, the scene is edited with add X and, where its label map says it shows
X, with remove X. The shipped concept classifier gives p(X) before and after each edit. The targets (the LEDITS
issue): add raises p(X) on at least 80% of the images, remove lowers it on at least 80% of those showing X, and
outside an edit mask nothing changes: one edit per image with a random rectangular mask, whose pixels outside
the rectangle must equal the input's (largest absolute difference 0).

Each image is inverted once: the engine's inversion cache serves all of its edits (the inversion depends only on
the image, the model and the inversion settings, not on the concepts or the mask).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisebrush.core.engine.requests import Concept, LeditsRequest
from noisebrush.core.errors import BadInput
from noisebrush.core.lab import classifier as clf
from noisebrush.core.lab import scenes
from noisebrush.core.lab.eval_config import LeditsEvalConfig
from noisebrush.core.lab.evaluate import Progress

TARGET = 0.8  # share of images on which an edit must move the classifier the right way
_STREAM = (
    6  # held-out scenes are drawn from [seed, i, 6]: apart from training ([seed, step]) and SDEdit's eval
)


@dataclass
class EditResult:
    """The classifier's p(concept) on one image before and after adding it and, if shown, removing it."""

    image: int
    concept: str
    shown: bool
    before: float
    added: float
    removed: float | None = None


@dataclass
class ConceptRow:
    concept: str
    images: int
    add_raised: float  # share of images on which add X raised p(X)
    add_change: float  # mean p(X) after add minus before
    shown: int  # images whose scene shows X
    remove_lowered: float | None  # share of those on which remove X lowered p(X)
    remove_change: float | None

    @property
    def add_met(self) -> bool:
        return self.add_raised >= TARGET

    @property
    def remove_met(self) -> bool | None:
        return None if self.remove_lowered is None else self.remove_lowered >= TARGET


@dataclass
class MaskCheck:
    """One masked add-edit per image: the largest change outside the rectangle (must be 0) and inside it."""

    edits: int = 0
    max_outside: int = 0
    mean_inside: float = 0.0

    @property
    def met(self) -> bool:
        return self.max_outside == 0


@dataclass
class LeditsEvalReport:
    config: LeditsEvalConfig
    results: list[EditResult] = field(default_factory=list)
    mask: MaskCheck = field(default_factory=MaskCheck)
    timing: dict[str, float] = field(default_factory=dict)
    examples: list[np.ndarray] = field(default_factory=list, repr=False)  # sheet rows; not in the JSON

    def rows(self) -> list[ConceptRow]:
        return [summarise(c, [r for r in self.results if r.concept == c]) for c in self.concepts()]

    def concepts(self) -> list[str]:
        return list(dict.fromkeys(r.concept for r in self.results))

    def to_json(self) -> dict[str, Any]:
        rows = [{**asdict(r), "add_met": r.add_met, "remove_met": r.remove_met} for r in self.rows()]
        return {
            "config": asdict(self.config),
            "target": TARGET,
            "concepts": rows,
            "mask": {**asdict(self.mask), "met": self.mask.met},
            "timing": self.timing,
            "results": [asdict(r) for r in self.results],
        }


def summarise(concept: str, results: list[EditResult]) -> ConceptRow:
    added = np.array([r.added - r.before for r in results])
    removed = np.array([r.removed - r.before for r in results if r.removed is not None])
    return ConceptRow(
        concept,
        len(results),
        float(np.mean(added > 0)) if len(added) else 0.0,
        float(np.mean(added)) if len(added) else 0.0,
        len(removed),
        float(np.mean(removed < 0)) if len(removed) else None,
        float(np.mean(removed)) if len(removed) else None,
    )


def held_out_scenes(config: LeditsEvalConfig) -> list[scenes.Scene]:
    return [
        scenes.render(np.random.default_rng([config.seed, i, _STREAM]), config.size)
        for i in range(config.images)
    ]


def random_box(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A rectangle of a third to two thirds of each side, anywhere in the image: 1 inside, 0 outside.

    Not smaller: the edit is feathered 8 px inwards (the request's default), which would leave a small box as is.
    """
    bh, bw = int(rng.integers(h // 3, 2 * h // 3 + 1)), int(rng.integers(w // 3, 2 * w // 3 + 1))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    mask = np.zeros((h, w), np.float32)
    mask[y : y + bh, x : x + bw] = 1.0
    return mask


def evaluate_ledits(
    config: LeditsEvalConfig, engine: Any = None, progress: Progress | None = None
) -> LeditsEvalReport:
    """Run the protocol; `engine` is a `noisebrush.core.engine.engine.Engine` (made here if None)."""
    config.validate()
    if engine is None:
        from noisebrush.core.engine.engine import Engine

        engine = Engine()
    net = clf.load_classifier(Path(config.classifier) if config.classifier else clf.default_classifier_path())
    if config.scale is None:
        config = replace(config, scale=engine.concept_scale(config.model))  # so the report names it
    words = choose_concepts(config, net.config.vocabulary, engine.vocabulary(config.model))
    index = {w: i for i, w in enumerate(net.config.vocabulary)}
    tell = progress or (lambda what, done: None)
    report = LeditsEvalReport(config)
    spent = {"invert": 0.0, "edit": 0.0, "mask": 0.0}
    edits = 0
    inside: list[float] = []

    def run(req: LeditsRequest, stage: str) -> np.ndarray:
        nonlocal edits
        started = time.perf_counter()
        out = engine.ledits(req)
        spent[stage] += time.perf_counter() - started
        edits += stage == "edit"
        return out

    for i, scene in enumerate(held_out_scenes(config)):
        common: dict[str, Any] = {
            "image": scene.image,
            "model": config.model,
            "steps": config.steps,
            "skip": config.skip,
            "momentum": config.momentum,
            "seed": i,
            "device": config.device,
        }

        def concept(word: str, remove: bool = False) -> list[Concept]:
            return [Concept(word, remove, config.scale, config.threshold, config.warmup)]

        plain = run(LeditsRequest(**common), "invert")  # inverts once; every edit below reuses it
        adds = [run(LeditsRequest(**common, concepts=concept(w)), "edit") for w in words]
        shown = [w for w in words if w in scene.concepts]
        removes = [run(LeditsRequest(**common, concepts=concept(w, remove=True)), "edit") for w in shown]
        mask = random_box(np.random.default_rng([config.seed, i, _STREAM + 1]), *scene.image.shape[:2])
        masked = run(LeditsRequest(**common, concepts=concept(words[i % len(words)]), mask=mask), "mask")
        diff = np.abs(masked.astype(np.int16) - scene.image.astype(np.int16))
        report.mask.max_outside = max(report.mask.max_outside, int(diff[mask == 0].max(initial=0)))
        inside.append(float(diff[mask > 0].mean()))

        p = clf.probabilities(net, [plain, *adds, *removes])
        after_remove = dict(zip(shown, p[1 + len(words) :], strict=True))
        for w, after_add in zip(words, p[1 : 1 + len(words)], strict=True):
            removed = after_remove.get(w)
            report.results.append(
                EditResult(
                    i,
                    w,
                    w in shown,
                    float(p[0, index[w]]),
                    float(after_add[index[w]]),
                    None if removed is None else float(removed[index[w]]),
                )
            )
        if i < config.examples:
            report.examples.append(np.concatenate([scene.image[..., :3], *adds], axis=1))
        tell(f"image {i + 1}/{config.images}", 1)

    report.mask.edits = config.images
    report.mask.mean_inside = float(np.mean(inside)) if inside else 0.0
    images = max(config.images, 1)
    report.timing = {
        "seconds_per_inversion": round(spent["invert"] / images, 3),  # with the plain regeneration
        "seconds_per_edit": round(spent["edit"] / max(edits, 1), 3),
        # add X, and remove X where shown: what one more image or one more concept costs
        "seconds_per_image_concept_pair": round(spent["edit"] / max(images * len(words), 1), 3),
        "seconds_per_masked_edit": round(spent["mask"] / images, 3),
        "seconds_total": round(sum(spent.values()), 1),
    }
    return report


def choose_concepts(config: LeditsEvalConfig, judged: list[str], known: list[str] | None) -> list[str]:
    """The words to edit: the asked ones, each judged by the classifier and known to the model."""
    words = list(config.concepts) or [w for w in judged if known is None or w in known]
    unjudged = [w for w in words if w not in judged]
    if unjudged:
        raise BadInput(f"the classifier cannot judge {', '.join(unjudged)}; its words: {', '.join(judged)}")
    unknown = [w for w in words if known is not None and w not in known]
    if unknown:
        raise BadInput(f"the model does not know {', '.join(unknown)}; its words: {', '.join(known or [])}")
    if not words:
        raise BadInput("no concept to evaluate: the model knows none of the classifier's words")
    return words


# ---------------------------------------------------------------- reporting


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"


def to_markdown(report: LeditsEvalReport) -> str:
    c = report.config
    rows = report.rows()
    lines = [
        f"LEDITS edit effect. Model `{c.model}`, {c.images} held-out scenes of {c.size}x{c.size} (seed {c.seed}, "
        f"stream {_STREAM}), steps = {c.steps or 'prior default'}, skip {c.skip}, concept scale {c.scale}, "
        f"threshold {c.threshold}, warm-up {c.warmup}, momentum {c.momentum}. Judge: the NoiseBrush concept "
        "classifier (`resources/models/classifier`), p(X) on the plain regeneration (before) and on the edit "
        f"(after). Target: add raises p(X) on >= {TARGET:.0%} of the images; remove lowers it on >= "
        f"{TARGET:.0%} of the images that show X.",
        "",
        "| concept | images | add raised p | mean Δp (add) | show X | remove lowered p | mean Δp (remove) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        add = _share(r.add_raised) + ("" if r.add_met else " (below)")
        remove = _share(r.remove_lowered) + ("" if r.remove_met in (True, None) else " (below)")
        lines.append(
            f"| {r.concept} | {r.images} | {add} | {_signed(r.add_change)} | {r.shown} | {remove} "
            f"| {_signed(r.remove_change)} |"
        )
    met_add = sum(r.add_met for r in rows)
    judged_remove = [r for r in rows if r.remove_met is not None]
    met_remove = sum(bool(r.remove_met) for r in judged_remove)
    m = report.mask
    lines += [
        "",
        f"- add meets {TARGET:.0%} for {met_add} of {len(rows)} concepts; remove for {met_remove} of "
        f"{len(judged_remove)} (concepts shown in no scene are not judged).",
        f"- masked edits ({m.edits}, random rectangles): largest absolute difference outside the mask "
        f"{m.max_outside} ({'met' if m.met else 'NOT met'}: must be 0); mean inside {m.mean_inside:.2f}.",
    ]
    lines += [f"- {k}: {v}" for k, v in report.timing.items()]
    return "\n".join(lines) + "\n"


def write_report(report: LeditsEvalReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(to_markdown(report))
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if report.examples:
        Image.fromarray(np.concatenate(report.examples, axis=0)).save(out / "examples.png")
