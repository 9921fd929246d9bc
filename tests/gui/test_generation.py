"""Generations from the window: results land as new layers, undo cleanly, cancel leaves nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gui_fakes import needs_bundled_model


def _scene(win, w: int = 128, h: int = 96) -> None:
    win.doc.new(w, h)
    layer = win.doc.add_layer("Sketch")
    layer.pixels[20:60, 20:80] = (30, 120, 40, 255)
    win.doc.touched(layer, None)
    win.tool_objects["rect"].select([(10, 10), (70, 50)], "replace")


def _wait_done(qtbot, ctl, timeout: int = 20000) -> str:
    outcome: list[str] = []
    ctl.finished.connect(outcome.append)
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout)
    qtbot.waitUntil(lambda: not ctl.runner.busy, timeout=timeout)
    return outcome[0]


def test_generation_adds_a_layer_above_its_source_and_undoes_cleanly(qtbot, window):
    _scene(window)
    doc = window.doc
    sketch = doc.layers[-1]
    before = [(la.uid, la.pixels.copy()) for la in doc.layers]
    n_undo = doc.undo_stack.index()
    window.sdedit.set_options(where="selection", seed=5, seed_locked=True)
    previews: list[object] = []
    window.sdedit.preview_changed.connect(lambda img, x, y: previews.append(img))
    assert window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit) == "done"
    assert len(doc.layers) == 3
    new = doc.layers[2]
    assert doc.layers[1] is sketch
    assert new.name.startswith("SDEdit") and "seed 5" in new.name
    assert (new.x, new.y, new.width, new.height) == (10, 10, 60, 40)  # only the selection's box
    for uid, pixels in before:  # the paint underneath is never overwritten
        assert np.array_equal(next(la for la in doc.layers if la.uid == uid).pixels, pixels)
    assert doc.undo_stack.index() == n_undo + 1  # one step
    assert previews and previews[-1] is None  # a preview was shown, then cleared
    doc.undo_stack.undo()
    assert [la.uid for la in doc.layers] == [uid for uid, _ in before]
    doc.undo_stack.redo()
    assert doc.layers[2] is new


def test_generation_request_carries_the_options(qtbot, window, fake_engine):
    _scene(window)
    window.sdedit.set_options(strength=0.7, steps=12, seed=3, seed_locked=True, variations=1, where="layer")
    window.sdedit.generate()
    _wait_done(qtbot, window.sdedit)
    req = fake_engine.calls[-1]
    assert (req.strength, req.steps, req.seed, req.model) == (0.7, 12, 3, "default")
    assert req.mask is not None and req.mask.max() == 1.0
    assert req.guide.shape[2] == 4


def test_cancel_leaves_no_layer_and_no_history(qtbot, window, fake_engine):
    _scene(window)
    doc = window.doc
    layers = list(doc.layers)
    index = doc.undo_stack.index()
    fake_engine.gate = threading.Event()
    window.sdedit.generate()
    qtbot.waitUntil(fake_engine.started.is_set, timeout=5000)
    assert window.sdedit_panel.cancel.isEnabled() and not window.sdedit_panel.generate.isEnabled()
    window.sdedit_panel.cancel.click()
    fake_engine.gate.set()
    assert _wait_done(qtbot, window.sdedit) == "cancelled"
    assert doc.layers == layers and doc.undo_stack.index() == index
    assert window.canvas.preview is None
    assert window.sdedit_panel.generate.isEnabled()


def test_batch_over_selected_layers_and_variations(qtbot, window):
    _scene(window)
    doc = window.doc
    other = doc.add_layer("Other")
    other.pixels[...] = (200, 10, 10, 255)
    doc.set_active(other, {la.uid for la in doc.layers[1:]})
    window.sdedit.set_options(where="layers", variations=3, seed=1, seed_locked=True)
    window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit) == "done"
    names = [la.name for la in doc.layers]
    assert names[1] == "Sketch" and names[2].startswith("SDEdit Sketch")
    assert names[3] == "Other" and names[4].startswith("SDEdit Other")
    made = doc.layers[4]
    first = made.pixels.copy()
    assert window.sdedit_panel.var_row.isVisibleTo(window.sdedit_panel)
    # Independent noise (the batch runner's default): layer n of the batch starts at seed + n.
    assert "seed 1" in names[2] and "seed 2" in names[4]
    window.sdedit.step_variation(1)
    assert not np.array_equal(made.pixels, first) and "seed 3" in made.name
    assert "seed 2" in doc.layers[2].name
    window.sdedit.keep_variation()
    assert window.sdedit.pending is None
    doc.undo_stack.undo()  # the whole batch is one step
    assert [la.name for la in doc.layers] == ["Background", "Sketch", "Other"]


def test_engine_error_shows_a_dialog_and_changes_nothing(qtbot, window, fake_engine):
    _scene(window)

    def broken(req, callback=None, should_stop=None):
        raise MemoryError()

    fake_engine.sdedit = broken
    errors: list[str] = []
    window.error_shown.connect(lambda title, text: errors.append(text))
    layers = list(window.doc.layers)
    window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit) == "failed"
    assert errors and "memory" in errors[0].lower()
    assert window.doc.layers == layers


def test_ledits_slider_reruns_and_replaces_the_result(qtbot, window, fake_engine):
    _scene(window)
    doc = window.doc
    ctl = window.ledits
    ctl.add_concept("cat")
    # A new concept starts at the model's own scale: the bundled prior's noisebrush.json asks for more than 7.
    assert ctl.options.concepts[0].scale == window.engines.concept_scale("default") > 7.0
    assert window.engines.concept_scale("no/such/model") == 7.0
    assert ctl.apply()
    assert _wait_done(qtbot, ctl) == "done"
    assert len(doc.layers) == 3 and doc.layers[2].name == "LEDITS +cat"
    made = doc.layers[2]
    first = made.pixels.copy()
    calls = len(fake_engine.calls)
    window.ledits_panel.rows[0].scale.setValue(40)  # 4.0: re-runs after the slider settles
    qtbot.waitUntil(lambda: len(fake_engine.calls) > calls, timeout=5000)
    _wait_done(qtbot, ctl)
    assert len(doc.layers) == 3 and doc.layers[2] is made
    assert not np.array_equal(made.pixels, first)
    assert fake_engine.calls[-1].image is fake_engine.calls[calls - 1].image  # same source: cached inversion
    doc.undo_stack.undo()
    assert np.array_equal(made.pixels, first)


def test_real_engine_with_a_tiny_model(qtbot, window, ddpm_model):
    """The real Engine on a tiny random prior: a layer appears; no bundled weights needed."""
    from noisebrush.gui.engines import EngineHolder

    window.engines = window.sdedit.engines = EngineHolder()
    _scene(window, 64, 64)
    window.tool_objects["rect"].select([(8, 8), (40, 40)], "replace")
    window.sdedit.set_options(model=str(ddpm_model), steps=4, strength=0.5, seed_locked=True, device="cpu")
    window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit, 120000) == "done"
    assert window.doc.layers[-1].name.startswith("SDEdit")


@needs_bundled_model
@pytest.mark.slow
def test_bundled_prior_generates_a_layer(qtbot, window):
    from noisebrush.gui.engines import EngineHolder

    window.engines = window.sdedit.engines = EngineHolder()
    _scene(window, 128, 128)
    window.sdedit.set_options(model="default", seed_locked=True, device="cpu")
    window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit, 600000) == "done"
    assert window.doc.layers[-1].name.startswith("SDEdit")


def test_ledits_panel_shows_one_row_per_concept(qtbot, window):
    from noisebrush.gui.panels.ledits import ConceptRow

    ctl = window.ledits
    for word in ("snow", "day", "fog"):
        ctl.add_concept(word)
    ctl.remove_concept(1)
    # Rows replaced by a rebuild must not linger on screen until Qt gets round to deleting them.
    shown = [r for r in window.ledits_panel.findChildren(ConceptRow) if not r.isHidden()]
    assert [r.word.currentText() for r in shown] == ["snow", "fog"]
