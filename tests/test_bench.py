"""The benchmark harness: rows judge their targets, the table prints, and bench/*_bench.py cases plug in."""

from __future__ import annotations

from noisebrush.core.bench import Row, hook_cases, side_by_side, table


def test_rows_judge_their_targets():
    assert Row("a", 1.0, 1.0, "s", 1.04, "<= 1.05").met is True
    assert Row("a", 1.0, 1.0, "s", 1.2, "<= 1.05").met is False
    assert Row("b", 9.0, 1.0, "s", 9.0, ">= 8").met is True
    assert Row("c", 512.0, None, "MB", None, "").met is None
    text = table([Row("a", 1.0, 2.0, "s", 0.5, "<= 1.0", "a note")])
    assert "| a " in text and "0.5" in text and "yes" in text and "- a: a note" in text


def test_side_by_side_reports_medians_and_pair_ratios():
    ours, peer, ratio = side_by_side(lambda: None, lambda: sum(range(20000)), pairs=3)
    assert ours < peer and ratio < 1.0


def test_hook_modules_with_cases_plug_in_and_scripts_are_left_alone(tmp_path):
    (tmp_path / "extra_bench.py").write_text(
        "from noisebrush.core.bench import Row\n"
        "def case(opt):\n    return [Row('extra', 1.0, 1.0, 's', 1.0, '<= 1.0')]\n"
        "CASES = {'extra': case}\n"
    )
    (tmp_path / "script_bench.py").write_text(
        "raise SystemExit('a standalone script must not be imported')\n"
    )
    cases = hook_cases(tmp_path)
    assert list(cases) == ["extra"]
    assert cases["extra"](None)[0].met is True
