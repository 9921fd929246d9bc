"""Live mode from the window: each finished stroke re-runs SDEdit of the selection; a newer stroke cancels the
run under way and only its result is shown; the overlay never enters the document; Apply is one undo step."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor

from noisebrush.gui.tools import ToolEvent

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def _scene(win, w: int = 128, h: int = 96) -> None:
    win.doc.new(w, h)
    layer = win.doc.add_layer("Sketch")
    layer.pixels[20:60, 20:80] = (30, 120, 40, 255)
    win.doc.touched(layer, None)
    win.tool_objects["rect"].select([(10, 10), (90, 70)], "replace")
    win.sdedit.set_options(seed=3, seed_locked=True)


def _stroke(win, y: float, color: tuple[int, int, int] = (200, 30, 30)) -> None:
    """A finished brush stroke across the selection, as the canvas drives the brush."""
    win.tools.set_color(QColor(*color))
    win.tools.set_size(6.0)
    brush = win.tool_objects["brush"]
    brush.press(ToolEvent(25.0, y, 1.0, LEFT, NONE))
    for x in range(26, 60, 3):
        brush.move(ToolEvent(float(x), y, 1.0, LEFT, NONE))
    brush.release(ToolEvent(60.0, y, 1.0, LEFT, NONE))


def _state(doc) -> tuple:
    """Everything of the document a user could see or undo, to compare exactly."""
    layers = tuple(
        (la.uid, la.name, la.x, la.y, la.opacity, la.visible, la.pixels.tobytes()) for la in doc.layers
    )
    return layers, doc.undo_stack.index(), doc.undo_stack.count(), doc.selection.mask.tobytes(), doc.modified


def _wait_overlay(qtbot, win, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: win.canvas.overlay is not None and not win.runner.busy, timeout=timeout)


def test_a_stroke_in_live_mode_shows_an_overlay_of_the_new_picture(qtbot, window, fake_engine):
    _scene(window)
    window.actions_by_name["live"].trigger()  # Ctrl+L
    assert window.live.enabled and window.sdedit_panel.live_toggle.isChecked()
    _wait_overlay(qtbot, window)
    first = window.results.shown
    assert first is not None and first.live and first.seed == 3
    _stroke(window, 40.0)
    qtbot.waitUntil(lambda: window.results.shown is not first and not window.runner.busy, timeout=20000)
    shown = window.results.shown
    req = fake_engine.calls[-1]
    assert req.seed == 3 and req.variations == 1 and req.live  # a live draft: the engine plans it
    assert tuple(req.guide[40, 40, :3]) == (200, 30, 30)  # the guide holds the new stroke
    img, x, y = window.canvas.overlay
    assert (x, y) == (shown.layer.x, shown.layer.y) == (10, 10)  # the selection's box
    # The fake engine inverts the colours inside the mask (minus seed % 7): the stroke, inverted.
    assert tuple(shown.layer.pixels[30, 30, :3]) == (255 - 200 - 3, 255 - 30 - 3, 255 - 30 - 3)
    assert img.pixelColor(30, 30).red() == 255 - 200 - 3
    assert len(window.doc.layers) == 2  # nothing entered the document


def test_a_second_stroke_cancels_the_run_and_only_the_newer_result_is_shown(qtbot, window, fake_engine):
    _scene(window)
    fake_engine.gate = threading.Event()
    shown: list[object] = []
    window.results.overlay_changed.connect(lambda e: shown.append(e))
    window.live.set_enabled(True)
    qtbot.waitUntil(fake_engine.started.is_set, timeout=5000)
    worker = window.runner.worker
    assert worker is not None and not worker.should_stop()
    _stroke(window, 40.0)
    # At once: the engine's stop flag is up before the newer request has even started.
    assert worker.should_stop()
    fake_engine.gate.set()
    _wait_overlay(qtbot, window)
    assert len(fake_engine.calls) == 2
    newer = fake_engine.calls[1]
    assert tuple(newer.guide[40, 40, :3]) == (200, 30, 30)
    live_shown = [e for e in shown if e is not None]
    assert len(live_shown) == 1  # the first run's result never appeared
    assert np.array_equal(
        live_shown[0].layer.pixels[..., :3][30, 30], (255 - 200 - 3, 255 - 30 - 3, 255 - 30 - 3)
    )
    assert [e.live for e in window.results.entries] == [True]


def test_apply_is_one_undo_step_and_undo_restores_the_document_exactly(qtbot, window, fake_engine):
    _scene(window)
    window.live.set_enabled(True)
    _wait_overlay(qtbot, window)
    entry = window.results.shown
    before = _state(window.doc)
    calls = len(fake_engine.calls)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)  # Enter applies
    doc = window.doc
    assert doc.undo_stack.index() == before[1] + 1
    added = doc.layers[2]
    assert doc.layers[1].name == "Sketch" and added.name == "Live (seed 3)"
    assert (added.x, added.y) == (entry.layer.x, entry.layer.y)
    assert np.array_equal(added.pixels, entry.layer.pixels)
    assert window.canvas.overlay is None  # the result is now the layer, not an overlay over it
    qtbot.wait(200)
    assert len(fake_engine.calls) == calls  # our own Apply is not a change to follow
    doc.undo_stack.undo()
    after = _state(doc)
    assert (after[0], after[1], after[3]) == (
        before[0],
        before[1],
        before[3],
    )  # layers, history place, selection


def test_apply_button_commits_and_is_off_without_a_result(qtbot, window):
    _scene(window)
    panel = window.sdedit_panel
    assert not panel.apply.isEnabled() and not window.actions_by_name["apply_result"].isEnabled()
    panel.live_toggle.click()
    _wait_overlay(qtbot, window)
    assert panel.apply.isEnabled()
    n = len(window.doc.layers)
    panel.apply.click()
    assert len(window.doc.layers) == n + 1 and not panel.apply.isEnabled()


def test_turning_live_off_leaves_the_document_exactly_as_before(qtbot, window, fake_engine):
    _scene(window)
    before = _state(window.doc)
    window.live.set_enabled(True)
    _wait_overlay(qtbot, window)
    window.actions_by_name["live"].trigger()
    assert not window.live.enabled and window.canvas.overlay is None
    assert _state(window.doc) == before
    calls = len(fake_engine.calls)
    _stroke(window, 50.0)  # off: strokes start nothing
    qtbot.wait(200)
    assert len(fake_engine.calls) == calls and not window.runner.busy


def test_nothing_runs_while_nothing_changes(qtbot, window, fake_engine):
    _scene(window)
    window.live.set_enabled(True)
    _wait_overlay(qtbot, window)
    calls = len(fake_engine.calls)
    qtbot.wait(500)
    assert len(fake_engine.calls) == calls
    assert not window.live._timer.isActive()


def test_a_slider_move_reruns_with_the_new_strength(qtbot, window, fake_engine):
    _scene(window)
    window.live.set_enabled(True)
    _wait_overlay(qtbot, window)
    first = window.results.shown
    window.sdedit_panel.strength.setValue(70)
    qtbot.waitUntil(lambda: window.results.shown is not first and not window.runner.busy, timeout=20000)
    assert fake_engine.calls[-1].strength == pytest.approx(0.7)
    assert window.results.shown.strength == pytest.approx(0.7)


def test_generate_during_a_live_run_takes_over(qtbot, window, fake_engine):
    _scene(window)
    fake_engine.gate = threading.Event()
    window.live.set_enabled(True)
    qtbot.waitUntil(fake_engine.started.is_set, timeout=5000)
    assert window.sdedit.generate(seed=11)
    fake_engine.gate.set()
    qtbot.waitUntil(lambda: any(la.name.startswith("SDEdit") for la in window.doc.layers), timeout=20000)
    assert any(r.seed == 11 for r in fake_engine.calls)
    window.live.set_enabled(False)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)


@pytest.mark.usefixtures("one_torch_thread")
def test_live_on_a_real_tiny_model_cancels_within_the_run(qtbot, tmp_path, ddpm_model):
    """The real engine and worker: a newer stroke stops the run under way (the engine's stop hooks), and the
    newer picture is the one shown."""
    from PyQt6.QtCore import QSettings

    from noisebrush.gui.engines import EngineHolder
    from noisebrush.gui.window import MainWindow

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, engines=EngineHolder(), recovery_folder=tmp_path / "rec")
    win.show()
    qtbot.waitExposed(win)
    try:
        _scene(win)
        win.sdedit.set_options(model=str(ddpm_model), steps=400, strength=0.9, device="cpu")
        outcomes: list[str] = []
        cancelled_at: list[float] = []
        win.runner.cancelled.connect(
            lambda: (outcomes.append("cancelled"), cancelled_at.append(time.monotonic()))
        )
        win.runner.succeeded.connect(lambda _: outcomes.append("done"))
        win.live.set_enabled(True)
        qtbot.waitUntil(lambda: win.runner.busy, timeout=5000)
        qtbot.wait(300)
        _stroke(win, 40.0)
        stroked = time.monotonic()
        win.sdedit.set_options(steps=10)
        qtbot.waitUntil(lambda: win.canvas.overlay is not None and not win.runner.busy, timeout=120000)
        assert outcomes[0] == "cancelled" and outcomes[-1] == "done"
        assert cancelled_at[0] - stroked < 3.0  # within a model block or two, not at the end of 360 steps
        assert win.results.shown is not None and win.results.shown.steps == 10
        assert len(win.doc.layers) == 2
    finally:
        win.live.set_enabled(False)
        win.runner.wait(30000)
        win.doc.undo_stack.setClean()
        win.close()


def test_the_status_bar_names_the_stages_the_run_went_through(qtbot, window, fake_engine):
    from noisebrush.core.engine.progress import Progress

    _scene(window)

    def two_stages(req, callback=None, should_stop=None):
        h, w = req.guide.shape[:2]
        for i, stage in enumerate(("compose", "compose", "refine"), 1):
            callback(Progress(i, 3, 0, (0, 0, w, h), stage))
        return [req.guide.copy()]

    fake_engine.sdedit = two_stages
    outcome: list[str] = []
    window.sdedit.finished.connect(outcome.append)
    window.sdedit.generate()
    qtbot.waitUntil(lambda: bool(outcome) and not window.runner.busy, timeout=20000)
    assert window.stages_label.text() == "stages: compose \u2192 refine"
    fake_engine.sdedit = type(fake_engine).sdedit.__get__(fake_engine)
    window.sdedit.generate()
    qtbot.waitUntil(lambda: window.stages_label.text() == "stages: denoise", timeout=20000)


def test_a_ledits_edit_during_a_live_run_takes_over(qtbot, window, fake_engine):
    _scene(window)
    fake_engine.gate = threading.Event()
    window.live.set_enabled(True)
    qtbot.waitUntil(fake_engine.started.is_set, timeout=5000)
    window.ledits.add_concept("snow", scale=5.0)
    window.ledits.apply(new_session=True)
    fake_engine.gate.set()
    qtbot.waitUntil(lambda: any(la.name.startswith("LEDITS") for la in window.doc.layers), timeout=20000)
    window.live.set_enabled(False)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)


def test_enter_in_the_prompt_field_does_not_apply(qtbot, window):
    _scene(window)
    window.live.set_enabled(True)
    _wait_overlay(qtbot, window)
    n = len(window.doc.layers)
    window.sdedit_panel.prompt.setEnabled(True)
    window.sdedit_panel.prompt.setFocus()
    qtbot.keyClick(window.sdedit_panel.prompt, Qt.Key.Key_Return)
    assert len(window.doc.layers) == n and window.canvas.overlay is not None
