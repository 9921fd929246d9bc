"""The evaluation protocol's arithmetic: KID as defined, L2 as the paper defines it, and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from noisebrush.core.errors import BadInput
from noisebrush.core.lab import classifier as clf
from noisebrush.core.lab import evaluate as ev


def direct_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2, term by term, straight from Binkowski et al. (2018), eq. 3, with k = (x.y/d + 1)^3."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_the_direct_sum() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 8)), rng.normal(0.3, 1.2, size=(25, 8))
    assert ev.kid(x, y) == pytest.approx(direct_kid(x, y), rel=1e-10)


def test_kid_is_about_zero_for_the_same_distribution_and_grows_with_the_gap() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16))
    same, other = rng.normal(size=(400, 16)), rng.normal(0.5, 1.0, size=(400, 16))
    far = ev.kid(x, other)
    assert far > 0.05
    assert abs(ev.kid(x, same)) < 0.05 * far
    assert abs(ev.kid(x, x.copy())) < 0.05 * far  # identical sets: only the O(1/m) diagonal term remains


def test_kid_subsets_is_the_mean_of_subset_kids() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    mean, std = ev.kid_subsets(x, y, subset=50, repeats=3)
    assert mean == pytest.approx(ev.kid(x, y)) and std == pytest.approx(0.0, abs=1e-12)


def test_l2_is_the_euclidean_norm_over_values_in_0_1() -> None:
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    assert ev.l2_to_guide([black], [black]) == 0.0
    assert ev.l2_to_guide([white], [black]) == pytest.approx(np.sqrt(64 * 64 * 3))


def test_held_out_sets_are_reproducible_and_disjoint() -> None:
    config = ev.EvalConfig(guides=4, reference=4, size=32)
    source, guides, reference = ev.held_out(config)
    again = ev.held_out(config)
    assert all(np.array_equal(a, b) for a, b in zip(guides, again[1], strict=True))
    assert not any(np.array_equal(s, r) for s in source for r in reference)


class EchoEngine:
    """Stands in for the engine: SDEdit returns the guide, generation returns grey images."""

    def sdedit(self, req):  # noqa: ANN001, ANN201
        if req.strength >= 1.0:
            return [req.guide.copy() for _ in range(req.variations)]
        return [req.guide[..., :3].copy()]

    def vocabulary(self, model: str) -> list[str]:
        return ["lake", "sun"]


@pytest.fixture
def tiny_classifier(tmp_path: Path) -> Path:
    folder = tmp_path / "classifier"
    clf.save_classifier(clf.ConceptNet(clf.ClassifierConfig(channels=(8, 8, 8, 8))), folder)
    return folder


def test_protocol_runs_and_reports_a_table(tiny_classifier: Path) -> None:
    config = ev.EvalConfig(
        size=32,
        guides=6,
        reference=8,
        strengths=(0.5,),
        unconditional=4,
        per_concept=3,
        classifier=str(tiny_classifier),
        time_size=0,
    )
    report = ev.evaluate(config, EchoEngine())
    names = [r.name for r in report.rows]
    assert names[0].startswith("held-out") and names[1].startswith("stroke") and "t0 = 0.5" in names[2]
    by_name = {r.name: r for r in report.rows}
    # An engine that returns the guide scores exactly like the guides themselves.
    assert by_name["SDEdit t0 = 0.5"].kid == pytest.approx(by_name["stroke paintings (the guides)"].kid)
    assert by_name["SDEdit t0 = 0.5"].l2 == 0.0
    assert set(report.concepts) == {"lake", "sun"}
    assert set(report.concept_recall) <= {"lake", "sun"}
    table = ev.to_markdown(report)
    assert "| images | KID x 10^3 |" in table and "| lake |" in table
    assert "shown in held-out scenes with it" in table


def test_concept_recall_judges_only_the_scenes_drawn_with_the_word(
    tiny_classifier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A classifier that sees exactly what each scene was drawn with, except `sun` in one scene."""
    config = ev.EvalConfig(size=32, reference=30, classifier=str(tiny_classifier))
    reference = ev._held_out_scenes(config.seed + 1, config.reference, config.size)
    net = clf.load_classifier(tiny_classifier)
    vocab = net.config.vocabulary
    truth = np.array([[float(w in s.concepts) for w in vocab] for s in reference])
    with_sun = [i for i, s in enumerate(reference) if "sun" in s.concepts]
    assert len(with_sun) >= 2
    truth[with_sun[0], vocab.index("sun")] = 0.2  # missed once
    monkeypatch.setattr(ev.clf, "probabilities", lambda _net, images: truth[: len(images)])

    recall = ev.concept_recall(net, config, vocab)
    assert recall["sun"] == pytest.approx(1 - 1 / len(with_sun))
    drawn = {w for s in reference for w in s.concepts}
    assert set(recall) == drawn & set(vocab)
    assert all(recall[w] == 1.0 for w in recall if w != "sun")


def test_classifier_round_trips(tmp_path: Path, tiny_classifier: Path) -> None:
    net = clf.load_classifier(tiny_classifier)
    images = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    clf.save_classifier(net, tmp_path / "again")
    again = clf.load_classifier(tmp_path / "again")
    assert np.allclose(clf.features(net, images), clf.features(again, images))
    assert clf.probabilities(net, images).shape == (3, len(net.config.vocabulary))


@pytest.mark.parametrize("repeats", [1, 2])
def test_batched_sdedit_matches_one_engine_call_per_guide(tmp_path: Path, repeats: int) -> None:
    from test_training import tiny

    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.lab import training

    model = str(training.train(tiny(tmp_path / "run", 1), progress=False).last_checkpoint / "prior")
    engine = Engine()
    config = ev.EvalConfig(
        model=model, size=16, guides=3, reference=2, steps=6, device="cpu", batch=3, repeats=repeats
    )
    _, guides, _ = ev.held_out(config)
    batched = ev.sdedit_guides(engine, config, guides, 0.5)
    one_by_one = ev.sdedit_guides(engine, ev.EvalConfig(**{**config.__dict__, "batch": 1}), guides, 0.5)
    for a, b in zip(batched, one_by_one, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("repeats", [0, 101])
def test_repeats_out_of_range_are_refused_with_what_is_allowed(repeats: int) -> None:
    with pytest.raises(BadInput, match=f"repeats must be between 1 and 100, got {repeats}"):
        ev.evaluate(ev.EvalConfig(repeats=repeats), engine=object())


# ---------------------------------------------------------------- SDEdit at canvas size (issue 17)


def test_band_energy_is_zero_for_flat_images_and_grows_with_a_patchwork() -> None:
    from noisebrush.core.lab.evaluate_canvas import band_energy

    flat = np.full((128, 128, 3), 120, np.uint8)
    assert band_energy([flat]) == pytest.approx(0.0, abs=1e-9)
    smooth = flat.copy()
    smooth[64:] = 200  # one horizon: energy only along one edge
    patch = flat.copy()
    for y in range(0, 128, 16):  # stacked bands of a 64 px prior's scale
        patch[y : y + 8] = 200
    assert 0 < band_energy([smooth]) < band_energy([patch])


def test_native_tiles_cover_the_image_at_the_native_size() -> None:
    from noisebrush.core.lab.evaluate_canvas import native_tiles

    image = np.arange(100 * 150 * 3, dtype=np.uint32).reshape(100, 150, 3).astype(np.uint8)
    tiles = native_tiles(image, 64)
    assert len(tiles) == 2 * 3 and all(t.shape == (64, 64, 3) for t in tiles)
    assert native_tiles(image[:64, :64], 64)[0] is not None and len(native_tiles(image[:64, :64], 64)) == 1


def test_canvas_protocol_runs_and_an_echo_engine_matches_the_native_run(tiny_classifier: Path) -> None:
    from noisebrush.core.lab.eval_config import CanvasEvalConfig
    from noisebrush.core.lab.evaluate_canvas import evaluate_canvas, side_by_side, to_markdown

    config = CanvasEvalConfig(
        sizes=(64,), native=32, guides=3, reference=4, strengths=(0.5,), classifier=str(tiny_classifier)
    )
    report = evaluate_canvas(config, EchoEngine())
    plans = [(r.size, r.plan) for r in report.rows]
    assert plans == [(32, "native"), (64, "single"), (64, "two-stage")]
    for row in report.rows:
        assert row.l2_native == pytest.approx(0.0, abs=1e-6)  # the guide itself, at any scale
    table = to_markdown(report)
    assert "| 64 | 0.5 | two-stage |" in table and "band ratio" in table
    assert side_by_side(report, tiny_classifier.parent / "s.png", 64)


def test_canvas_flags_belong_to_the_canvas_protocol(tmp_path: Path) -> None:
    from noisebrush.core.cli.main import main

    for argv in (["eval", "--work-size", "64"], ["eval", "--canvas", "256", "--unconditional", "3"]):
        assert main(argv) == 2
    assert main(["eval", "--canvas", "256,x"]) == 2
