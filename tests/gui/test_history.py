"""The history of results: every finished generation is kept (bounded to the last N), shows over the canvas
when hovered or picked, steps with one key, applies as one undo step and re-runs with a new seed."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PyQt6.QtCore import Qt

from noisebrush.gui.history import HistoryEntry, ResultHistory
from noisebrush.gui.model.layer import Layer


def _entry(seed: int) -> HistoryEntry:
    pixels = np.full((4, 6, 4), seed % 256, np.uint8)
    return HistoryEntry(Layer("r", pixels, 1, 2), None, seed, 0.5, "", "default")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 999), st.tuples(st.just("limit"), st.integers(1, 6))), max_size=30))
def test_the_history_holds_the_last_n_results_and_no_more(ops):
    history = ResultHistory(limit=3)
    added: list[HistoryEntry] = []
    for op in ops:
        if isinstance(op, tuple):
            history.set_limit(op[1])
        else:
            added.append(_entry(op))
            history.add(added[-1], show=op % 2 == 0)
        assert len(history.entries) <= history.limit
        assert history.entries == added[len(added) - len(history.entries) :]  # the newest, in order
        assert history.overlay is None or history.overlay in history.entries


def _scene(win) -> None:
    win.doc.new(128, 96)
    layer = win.doc.add_layer("Sketch")
    layer.pixels[20:60, 20:80] = (30, 120, 40, 255)
    win.doc.touched(layer, None)
    win.tool_objects["rect"].select([(10, 10), (70, 50)], "replace")


def _generate(qtbot, win, **options) -> None:
    outcome: list[str] = []
    win.sdedit.finished.connect(outcome.append)
    win.sdedit.set_options(**options)
    assert win.sdedit.generate()
    qtbot.waitUntil(lambda: bool(outcome) and not win.runner.busy, timeout=20000)
    assert outcome[0] == "done"


def test_variations_fill_the_history_bounded_by_the_setting(qtbot, window):
    _scene(window)
    window.results_panel.limit.setValue(4)  # the setting, as the panel sets it
    assert window.settings.value("history/size") in (4, "4")
    _generate(qtbot, window, variations=6, seed=10, seed_locked=True, strength=0.4)
    seeds = [e.seed for e in window.results.entries]
    assert seeds == [12, 13, 14, 15]  # the last 4 of seeds 10..15, no more
    assert all(e.strength == 0.4 and not e.live for e in window.results.entries)
    assert window.results_panel.list.count() == 4
    _generate(qtbot, window, variations=1, seed=20)
    assert [e.seed for e in window.results.entries] == [13, 14, 15, 20]


def test_one_key_steps_through_the_results_on_the_canvas(qtbot, window):
    _scene(window)
    _generate(qtbot, window, variations=3, seed=1, seed_locked=True)
    window.sdedit.keep_variation()  # the run's variations are settled: the key steps through the history
    window.canvas.setFocus()
    seen = []
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
        seen.append(window.results.shown.seed)
        img, x, y = window.canvas.overlay
        assert (x, y) == (window.results.shown.layer.x, window.results.shown.layer.y)
    assert sorted(seen) == [1, 2, 3]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Comma)
    assert window.results.shown.seed == seen[1]


def test_hover_shows_a_result_and_leaving_goes_back(qtbot, window):
    _scene(window)
    _generate(qtbot, window, variations=2, seed=5, seed_locked=True)
    panel = window.results_panel
    first, second = panel.list.item(0), panel.list.item(1)
    panel.list.itemClicked.emit(first)
    picked = window.results.shown
    assert picked is not None and window.canvas.overlay[0] is picked.image
    panel.list.itemEntered.emit(second)
    assert window.canvas.overlay[0] is window.results.peeked.image and window.results.peeked is not picked
    window.results.peek(None)
    assert window.canvas.overlay[0] is picked.image


def test_applying_a_history_entry_is_one_undo_step(qtbot, window):
    _scene(window)
    _generate(qtbot, window, variations=2, seed=7, seed_locked=True)
    doc = window.doc
    entry = window.results.entries[-1]  # the variation that is not in the document
    window.results.show(entry)
    before = [(la.uid, la.pixels.tobytes()) for la in doc.layers]
    index = doc.undo_stack.index()
    window.results_panel.apply.click()
    assert doc.undo_stack.index() == index + 1 and len(doc.layers) == len(before) + 1
    assert any(np.array_equal(la.pixels, entry.layer.pixels) for la in doc.layers)
    doc.undo_stack.undo()
    assert [(la.uid, la.pixels.tobytes()) for la in doc.layers] == before


def test_rerun_uses_the_entry_settings_with_a_new_seed(qtbot, window, fake_engine):
    _scene(window)
    _generate(qtbot, window, seed=3, seed_locked=True, strength=0.3)
    window.sdedit.set_options(strength=0.8)
    entry = window.results.entries[-1]
    window.results.show(entry)
    outcome: list[str] = []
    window.sdedit.finished.connect(outcome.append)
    window.results_panel.rerun.click()
    qtbot.waitUntil(lambda: bool(outcome) and not window.runner.busy, timeout=20000)
    req = fake_engine.calls[-1]
    assert req.strength == 0.3 and req.seed != 3
    assert window.results.entries[-1].seed == req.seed
