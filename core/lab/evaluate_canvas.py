"""SDEdit at canvas size (issue 17): held-out scenes rendered at 256 and 512 px, their stroke paintings as
guides, one stage at full size beside the two-stage plan (compose at the work size, refine at full size).

The scene generator draws the same scene at any size, so the truth at canvas size is at hand. Per size,
strength and plan:
- KID against held-out scenes of the same size, both area-resized to the classifier's input (as
  `classifier.prepare` does), over the native run's KID (64 px outputs against 64 px scenes);
- band energy: the mean square of a difference of two Gaussian blurs (sigma BAND[0] and BAND[1] pixels), the
  periods between a few pixels and the prior's native structures, where a patchwork of 64-px-scale pieces
  (popcorn clouds, stacked tree lines, streaks) puts energy that real scenes of that size do not have;
  output over held-out scenes;
- false concepts: the share of (tile, word) pairs where the classifier finds a word that the guide's scene
  does not have, on tiles of the native size; over the native run's share (whole 64 px outputs);
- L2 to the guide at the native scale (both area-resized to 64 px), over the native run's.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.lab import classifier as clf
from noisebrush.core.lab import scenes
from noisebrush.core.lab.eval_config import CanvasEvalConfig
from noisebrush.core.lab.evaluate import Progress, kid_subsets, l2_to_guide

BAND = (1.5, 8.0)  # sigmas in pixels: periods of about 4 to 24 px, a 64 px prior's clouds, bands and streaks


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (N, H, W) float arrays, edges reflected (separable, kernel to 3 sigma)."""
    import torch
    import torch.nn.functional as F

    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    k = (k / k.sum()).float()
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))[:, None]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return x[:, 0].numpy()


def band_energy(images: list[np.ndarray], band: tuple[float, float] = BAND) -> float:
    """Mean over images of the mean square of (blur(sigma_lo) - blur(sigma_hi)) of the luma in [0, 1]."""
    grey = np.stack(
        [im[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255 for im in images]
    )
    dog = blur(grey, band[0]) - blur(grey, band[1])
    return float(np.mean(dog**2))


def native_tiles(image: np.ndarray, native: int) -> list[np.ndarray]:
    """Non-overlapping native-size tiles covering the image (the last row and column flush with its edge)."""
    h, w = image.shape[:2]
    if max(h, w) <= native:
        return [image]
    ys = sorted({*range(0, h - native + 1, native), h - native})
    xs = sorted({*range(0, w - native + 1, native), w - native})
    return [image[y : y + native, x : x + native] for y in ys for x in xs]


def false_concepts(
    net: clf.ConceptNet, images: list[np.ndarray], truths: list[list[str]], native: int
) -> float:
    """Share of (tile, word) pairs, over words the scene does not have, that the classifier says are shown."""
    vocab = net.config.vocabulary
    found = absent = 0
    for image, truth in zip(images, truths, strict=True):
        tiles = native_tiles(image, native)
        shown = clf.probabilities(net, tiles) > 0.5
        missing = np.array([w not in truth for w in vocab])
        found += int(shown[:, missing].sum())
        absent += len(tiles) * int(missing.sum())
    return found / max(absent, 1)


def at_native(images: list[np.ndarray], native: int) -> list[np.ndarray]:
    """Area-resized to the native size along the longest side (the scale the prior composed at)."""
    out = []
    for im in images:
        h, w = im.shape[:2]
        scale = native / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        out.append(np.asarray(Image.fromarray(im[..., :3]).resize(size, Image.Resampling.BOX)))
    return out


@dataclass
class CanvasRow:
    size: int
    strength: float
    plan: str  # "native" (64 px run), "single" (one stage at full size) or "two-stage"
    kid: float
    kid_ratio: float  # over the native run's KID at this strength
    band_ratio: float  # band energy over held-out scenes' of the same size
    false_rate: float
    false_ratio: float  # over the native run's
    l2_native: float  # L2 to the guide at the native scale
    l2_ratio: float
    seconds_per_image: float


@dataclass
class CanvasReport:
    config: CanvasEvalConfig
    rows: list[CanvasRow] = field(default_factory=list)
    real: dict[str, float] = field(default_factory=dict)  # the held-out scenes' own figures per size
    # (size, "guide" | plan): the first guide and its outputs at the middle strength, for the side-by-side
    examples: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {"config": asdict(self.config), "rows": [asdict(r) for r in self.rows], "real": self.real}


def scene_set(
    config: CanvasEvalConfig, size: int
) -> tuple[list[scenes.Scene], list[np.ndarray], list[np.ndarray]]:
    """(guides' scenes, their stroke paintings, reference scenes) at `size`; the same scenes at every size."""
    source = [scenes.render(np.random.default_rng([config.seed, i, 1]), size) for i in range(config.guides)]
    guides = [
        scenes.strokes(s.image, np.random.default_rng([config.seed, i, 2])) for i, s in enumerate(source)
    ]
    reference = [
        scenes.render(np.random.default_rng([config.seed + 1, i, 1]), size).image
        for i in range(config.reference)
    ]
    return source, guides, reference


def run_plan(
    engine: object, config: CanvasEvalConfig, guides: list[np.ndarray], strength: float, work_size: int | None
) -> tuple[list[np.ndarray], float]:
    """SDEdit of every guide (guide i with seed i) through the engine; `work_size` 0 is one stage, None the
    model's own plan."""
    started = time.time()
    out = []
    for i, guide in enumerate(guides):
        req = SDEditRequest(
            guide=guide,
            model=config.model,
            strength=strength,
            steps=config.steps,
            seed=i,
            device=config.device,
            work_size=work_size,
            refine_strength=config.refine_strength,
        )
        out.append(engine.sdedit(req)[0])  # type: ignore[attr-defined]
    return out, (time.time() - started) / max(len(guides), 1)


def evaluate_canvas(
    config: CanvasEvalConfig, engine: object | None = None, progress: Progress | None = None
) -> CanvasReport:
    """Run the canvas-size protocol; `engine` as for `evaluate.evaluate` (made here if None)."""
    if engine is None:
        from noisebrush.core.engine.engine import Engine

        engine = Engine()
    config.validate()
    net = clf.load_classifier(Path(config.classifier) if config.classifier else clf.default_classifier_path())
    tell = progress or (lambda what, done: None)
    report = CanvasReport(config)
    native, work = config.native, config.work_size
    n_source, n_guides, n_reference = scene_set(config, native)
    n_ref = clf.features(net, n_reference)
    n_truth = [s.concepts for s in n_source]
    baseline = {}
    for strength in config.strengths:
        out, seconds = run_plan(engine, config, n_guides, strength, 0)
        tell(f"native {native} px t0={strength:g}", len(out))
        kid = kid_subsets(clf.features(net, out), n_ref)[0]
        fr = false_concepts(net, out, n_truth, native)
        l2 = l2_to_guide(out, n_guides)
        baseline[strength] = (kid, fr, l2)
        report.rows.append(
            CanvasRow(native, strength, "native", kid, 1.0, float("nan"), fr, 1.0, l2, 1.0, seconds)
        )
    for size in config.sizes:
        source, guides, reference = scene_set(config, size)
        ref = clf.features(net, reference)
        real_band = band_energy(reference)
        truth = [s.concepts for s in source]
        report.real[f"band_energy_{size}"] = real_band
        report.real[f"false_rate_{size}"] = false_concepts(net, [s.image for s in source], truth, native)
        small_guides = at_native(guides, native)
        for strength in config.strengths:
            kid0, fr0, l20 = baseline[strength]
            for plan, work_size in (("single", 0), ("two-stage", work)):
                out, seconds = run_plan(engine, config, guides, strength, work_size)
                tell(f"{size} px t0={strength:g} {plan}", len(out))
                kid = kid_subsets(clf.features(net, out), ref)[0]
                fr = false_concepts(net, out, truth, native)
                l2 = l2_to_guide(at_native(out, native), small_guides)
                report.rows.append(
                    CanvasRow(
                        size,
                        strength,
                        plan,
                        kid,
                        _ratio(kid, kid0),
                        _ratio(band_energy(out), real_band),
                        fr,
                        _ratio(fr, fr0),
                        l2,
                        _ratio(l2, l20),
                        seconds,
                    )
                )
                if strength == config.strengths[len(config.strengths) // 2]:
                    report.examples[(size, "guide")], report.examples[(size, plan)] = guides[0], out[0]
    return report


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf") if a > 0 else 1.0


def side_by_side(report: CanvasReport, path: Path, size: int) -> bool:
    """guide | one stage | two-stage of the first held-out guide at `size` (middle strength); False if not run."""
    parts = [report.examples.get((size, k)) for k in ("guide", "single", "two-stage")]
    if any(p is None for p in parts):
        return False
    Image.fromarray(np.concatenate(parts, 1)).save(path)  # type: ignore[arg-type]
    return True


def to_markdown(report: CanvasReport) -> str:
    c = report.config
    lines = [
        f"Model `{c.model}`, {c.guides} held-out guides and {c.reference} reference scenes per size, "
        f"steps = {c.steps or 'prior default'}, two-stage: compose at "
        f"{f'{c.work_size} px' if c.work_size else 'the model work size'}, refine "
        f"at t0 = {c.refine_strength if c.refine_strength is not None else 'the model default'}; seed {c.seed}.",
        f"KID ratio: over the native {c.native} px run's KID at the same t0 (target <= 1.2). Band: energy of a "
        f"difference of Gaussian blurs (sigma {BAND[0]:g} and {BAND[1]:g} px) of the outputs over that of "
        "held-out scenes of the same size (target <= 1.4). False: share of (native-size tile, word) pairs "
        "where the classifier finds a word the guide's scene lacks; ratio over the native run's (target <= "
        "1.2). L2 @64: L2 to the guide with both area-resized to the native size; ratio over the native run's.",
        "",
        "| size | t0 | plan | KID x 10^3 | KID ratio | band ratio | false % | false ratio | L2 @64 | L2 ratio | s / image |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        band = "" if np.isnan(r.band_ratio) else f"{r.band_ratio:.2f}"
        lines.append(
            f"| {r.size} | {r.strength:g} | {r.plan} | {1e3 * r.kid:.2f} | {r.kid_ratio:.2f} | {band} | "
            f"{100 * r.false_rate:.1f} | {r.false_ratio:.2f} | {r.l2_native:.2f} | {r.l2_ratio:.2f} | "
            f"{r.seconds_per_image:.1f} |"
        )
    real = [f"{k}: {v:.4g}" for k, v in report.real.items()]
    return "\n".join(lines) + "\n\nHeld-out scenes themselves: " + ", ".join(real) + "\n"


def write_canvas_report(report: CanvasReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report-canvas.md").write_text(to_markdown(report))
    (out / "report-canvas.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    for size in report.config.sizes:
        side_by_side(report, out / f"canvas-{size}.png", size)
