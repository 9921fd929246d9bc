"""The LEDITS edit-effect evaluation: its report's structure, one inversion per image, the mask invariant, the CLI.

The 80% figures need the trained prior; here a tiny random Stable Diffusion and an untrained classifier only
check that the protocol measures what it says it measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from noisebrush.core.cli.main import main
from noisebrush.core.lab import classifier as clf
from noisebrush.core.lab import evaluate_ledits as ev

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_classifier(tmp_path: Path) -> Path:
    folder = tmp_path / "classifier"
    torch.manual_seed(0)
    clf.save_classifier(clf.ConceptNet(clf.ClassifierConfig(channels=(8, 8, 8, 8))), folder)
    return folder


def config(model: Path, classifier: Path, **kw) -> ev.LeditsEvalConfig:
    base = dict(
        model=str(model), size=32, images=2, steps=6, skip=0.2, device="cpu", classifier=str(classifier)
    )
    return ev.LeditsEvalConfig(**{**base, **kw})


def test_report_covers_every_concept_and_image_and_the_mask_changes_nothing_outside(
    sd_model, tiny_classifier, monkeypatch, tmp_path
):
    from noisebrush.core.engine import ledits as ledits_mod
    from noisebrush.core.engine.engine import Engine

    probe = config(sd_model, tiny_classifier, size=48)
    scenes = ev.held_out_scenes(probe)
    words = (scenes[0].mood, "lake")  # the first scene shows its mood: remove is exercised
    # strong, early guidance: a random tiny model's concepts differ little from the empty prompt
    cfg = config(sd_model, tiny_classifier, concepts=words, size=48, scale=8.0, threshold=0.5, warmup=0)
    inversions = []
    real_invert = ledits_mod.invert
    monkeypatch.setattr(ledits_mod, "invert", lambda *a, **k: inversions.append(1) or real_invert(*a, **k))

    report = ev.evaluate_ledits(cfg, Engine())

    assert len(inversions) == cfg.images, "each image is inverted once for all its edits"
    assert [(r.image, r.concept) for r in report.results] == [(i, w) for i in range(2) for w in words]
    for r in report.results:
        assert r.shown == (r.concept in scenes[r.image].concepts)
        assert (r.removed is not None) == r.shown
        assert all(0.0 <= p <= 1.0 for p in (r.before, r.added, r.removed or 0.0))
    rows = {r.concept: r for r in report.rows()}
    assert list(rows) == list(words)
    for w, row in rows.items():
        shown = sum(w in s.concepts for s in scenes)
        assert row.images == 2 and row.shown == shown and 0.0 <= row.add_raised <= 1.0
        assert (row.remove_lowered is None) == (shown == 0)
    assert rows[words[0]].shown >= 1

    assert report.mask.edits == 2 and report.mask.max_outside == 0 and report.mask.met
    assert report.mask.mean_inside > 0, "the masked edit changes the inside"
    assert report.timing["seconds_per_image_concept_pair"] > 0

    data = json.loads(json.dumps(report.to_json()))
    assert data["target"] == 0.8 and data["mask"]["met"] is True and len(data["results"]) == 4
    assert {c["concept"] for c in data["concepts"]} == set(words)
    text = ev.to_markdown(report)
    assert "| concept | images | add raised p |" in text and f"| {words[0]} | 2 |" in text
    assert "largest absolute difference outside the mask 0 (met" in text
    ev.write_report(report, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.md", "report.json", "examples.png"}


def test_words_are_checked_against_the_classifier_and_the_model():
    judged = ["lake", "sun", "snow"]
    cfg = ev.LeditsEvalConfig(concepts=("lake", "cat"))
    with pytest.raises(ev.BadInput, match="classifier cannot judge cat"):
        ev.choose_concepts(cfg, judged, None)
    with pytest.raises(ev.BadInput, match="model does not know snow"):
        ev.choose_concepts(ev.LeditsEvalConfig(concepts=("snow",)), judged, ["lake", "sun"])
    assert ev.choose_concepts(ev.LeditsEvalConfig(), judged, ["sun", "lake", "rain"]) == ["lake", "sun"]
    with pytest.raises(ev.BadInput, match="threshold"):
        ev.LeditsEvalConfig(threshold=1.5).validate()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ledits", "--guides", "3"], "--guides belong.* SDEdit protocol"),
        (["--images", "3"], "--images belong.* LEDITS evaluation"),
        (["--ledits", "--images", "0"], "images must be at least 1"),
    ],
)
def test_cli_refuses_flags_of_the_other_protocol(capsys, argv, message):
    assert main(["eval", *argv]) == 2
    assert message.split(".*")[0] in capsys.readouterr().err


def test_cli_ledits_writes_the_report(sd_model, tiny_classifier, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["eval", "--ledits", "--model", str(sd_model), "--classifier", str(tiny_classifier), "--size", "32"]
        + ["--images", "1", "--concepts", "lake", "--steps", "4", "--device", "cpu", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert "| lake | 1 |" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["config"]["concepts"] == ["lake"]


def test_cli_sdedit_protocol_still_gets_its_flags_and_defaults(monkeypatch, capsys):
    from noisebrush.core.lab import evaluate

    seen = []

    def fake(config, engine=None, progress=None):
        seen.append(config)
        return evaluate.EvalReport(config)

    monkeypatch.setattr(evaluate, "evaluate", fake)
    assert main(["eval", "--guides", "3", "--strengths", "0.3,0.6", "--device", "cpu"]) == 0
    [config] = seen
    assert config.guides == 3 and config.strengths == (0.3, 0.6)
    assert config.reference == evaluate.EvalConfig().reference and config.batch == evaluate.EvalConfig().batch
