"""SDEdit of "Every selected layer" runs as one batch through the runner the command line and the server use:
one result layer per layer (one undo step), a refused layer failing alone, cancel changing nothing, and the
shared-noise choice reaching each layer's request."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import noisebrush.gui.layer_batch as layer_batch
from noisebrush.core.batch.runner import run_batch
from noisebrush.core.errors import BadInput, Cancelled
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import intersect

W, H = 64, 48
REFUSED = (13, 13, 13)  # a layer whose first pixel is this is refused by the engine below


def _layers(win, bounds: list[tuple[int, int, int, int]], names: list[str] | None = None) -> list[Layer]:
    """Opaque layers of their own bounds (x, y, w, h) over the background, all selected for batch work."""
    doc = win.doc
    doc.new(W, H)
    rng = np.random.default_rng(len(bounds))
    made = []
    for i, (x, y, w, h) in enumerate(bounds):
        pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        pixels[..., 3] = 255
        layer = Layer(names[i] if names else f"L{i}", pixels, x, y)
        doc.insert_layer(layer, len(doc.layers))
        made.append(layer)
    doc.set_active(made[-1], {la.uid for la in made})
    return made


def _state(doc) -> list[tuple[int, str, int, int, bytes]]:
    return [(la.uid, la.name, la.x, la.y, la.pixels.tobytes()) for la in doc.layers]


def _generate(qtbot, win, timeout: int = 20000) -> str:
    outcome: list[str] = []
    win.sdedit.finished.connect(outcome.append)
    said: list[str] = []
    win.sdedit.error.connect(said.append)
    win.sdedit.message.connect(said.append)
    assert win.sdedit.generate(), said
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout)
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=timeout)
    return outcome[0]


def _refusing(fake_engine) -> list[int]:
    """Make the fake engine refuse a layer marked with REFUSED, as the memory budget refuses a frame; the
    list returned grows by the seed of each refused request."""
    sdedit = fake_engine.sdedit
    refused: list[int] = []

    def run(req, callback=None, should_stop=None):
        if tuple(req.guide[0, 0, :3]) == REFUSED:
            refused.append(req.seed)
            raise BadInput("this layer is over the memory budget")
        return sdedit(req, callback, should_stop)

    fake_engine.sdedit = run
    return refused


box = st.tuples(st.integers(-20, W - 4), st.integers(-20, H - 4), st.integers(4, 40), st.integers(4, 30))


def _at_least_8_on_canvas(b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The least the engine takes (a smaller layer fails alone: see the refused-layer test)."""
    x, y, w, h = b
    return x, y, max(w, 8 - x), max(h, 8 - y)


on_canvas = st.tuples(
    st.integers(-12, W - 8), st.integers(-12, H - 8), st.integers(8, 40), st.integers(8, 30)
).map(_at_least_8_on_canvas)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.lists(on_canvas, min_size=2, max_size=3), selection=st.none() | box)
def test_each_selected_layer_gets_its_own_result_and_one_undo_removes_them_all(
    qtbot, window, fake_engine, bounds, selection
):
    fake_engine.steps, fake_engine.step_s = 1, 0.0
    fake_engine.calls.clear()
    layers = _layers(window, bounds)
    doc = window.doc
    if selection is not None:
        x, y, w, h = selection
        window.tool_objects["rect"].select([(x, y), (x + w, y + h)], "replace")
    sel = doc.selection.bounds  # None: nothing selected (a rectangle off the canvas selects nothing)
    before, index = _state(doc), doc.undo_stack.index()
    # Seed 0 with shared noise: the fake engine inverts every layer exactly (its shift is seed % 7).
    window.sdedit.set_options(where="layers", seed=0, seed_locked=True, variations=1, shared_noise=True)
    expected = {}
    for la in layers:
        within = intersect((la.x, la.y, la.width, la.height), doc.rect)
        region = within if sel is None or within is None else intersect(sel, within)
        if region is not None:
            expected[la.uid] = region
    if not expected:
        return  # nothing to work on: the controller says so (tested elsewhere)
    assert _generate(qtbot, window) == "done"
    for la in layers:
        i = doc.index_of(la)
        if la.uid not in expected:
            assert i + 1 == len(doc.layers) or not doc.layers[i + 1].name.startswith("SDEdit")
            continue
        made = doc.layers[i + 1]
        assert made.name == f"SDEdit {la.name} (seed 0)"
        assert (made.x, made.y, made.width, made.height) == expected[la.uid]  # only where it may change
        under = la.pixels[made.y - la.y :, made.x - la.x :][: made.height, : made.width]
        np.testing.assert_array_equal(made.pixels[..., :3], 255 - under[..., :3])
        assert (made.pixels[..., 3] == 255).all()
    # The engine saw each layer's own selection: where the mask lets it change is that layer's region.
    ran = [la for la in layers if la.uid in expected]
    assert len(fake_engine.calls) == len(ran)
    for req, la in zip(fake_engine.calls, ran, strict=True):
        if sel is None:
            assert req.mask is None
        else:
            _, _, w, h = expected[la.uid]
            assert req.mask.shape == req.guide.shape[:2] and int((req.mask > 0).sum()) == w * h
    assert doc.undo_stack.index() == index + 1  # the whole batch is one step
    doc.undo_stack.undo()
    assert _state(doc) == before


@pytest.mark.parametrize("shared", [True, False])
def test_the_studio_runs_the_layers_through_the_batch_runner_with_the_chosen_noise(
    qtbot, window, fake_engine, monkeypatch, shared
):
    batches = []

    def spy(batch, executor, on_frame=None):
        batches.append(batch)
        return run_batch(batch, executor, on_frame)

    monkeypatch.setattr(layer_batch, "run_batch", spy)
    _layers(window, [(0, 0, 20, 20), (10, 5, 30, 12), (30, 20, 34, 28)])
    window.tool_objects["rect"].select([(0, 0), (W, H)], "replace")  # each layer's mask: its own bounds
    panel = window.sdedit_panel
    assert not panel.shared_noise.isVisibleTo(panel)  # only "Every selected layer" has several layers
    next(b for b in panel.where_group.buttons() if b.property("where") == "layers").click()
    assert panel.shared_noise.isVisibleTo(panel)
    if shared:
        panel.shared_noise.click()
    assert window.sdedit.options.shared_noise is shared
    window.sdedit.set_options(seed=7, seed_locked=True, variations=2)
    assert _generate(qtbot, window) == "done"
    assert len(batches) == 2  # one batch per variation, each over every layer
    for batch in batches:
        assert batch.output is None and batch.operation == "sdedit" and batch.shared_noise is shared
        assert [f.name for f in batch.frames] == ["L0", "L1", "L2"]
        assert [m.shape for m in batch.masks.images] == [(20, 20), (12, 30), (28, 34)]
    seeds = [req.seed for req in fake_engine.calls]
    assert all(req.variations == 1 for req in fake_engine.calls)
    if shared:  # the same noise for every layer: what is alike in the layers stays alike
        assert seeds == [7, 7, 7, 8, 8, 8]
    else:  # layer n at seed + n, as separate runs would
        assert seeds == [7, 8, 9, 8, 9, 10]
    names = [la.name for la in window.doc.layers if la.name.startswith("SDEdit")]
    assert names == [f"SDEdit L{n} (seed {7 if shared else 7 + n})" for n in range(3)]
    window.sdedit.step_variation(1)
    names = [la.name for la in window.doc.layers if la.name.startswith("SDEdit")]
    assert names == [f"SDEdit L{n} (seed {8 if shared else 8 + n})" for n in range(3)]
    assert len(window.results.entries) == 6  # every variation of every layer is in the history


def test_a_refused_layer_fails_alone_and_the_message_names_it(qtbot, window, fake_engine):
    refused = _refusing(fake_engine)
    bounds = [(0, 0, 30, 20), (5, 5, 30, 30), (20, 10, 40, 30), (59, 43, 5, 5)]
    tree = _layers(window, bounds, ["Sky", "Tree", "Cat", "Dot"])[1]
    tree.pixels[0, 0, :3] = REFUSED
    messages: list[str] = []
    window.sdedit.message.connect(messages.append)
    before, index = _state(window.doc), window.doc.undo_stack.index()
    window.sdedit.set_options(where="layers", seed=3, seed_locked=True, variations=2)
    assert _generate(qtbot, window) == "done"
    names = [la.name for la in window.doc.layers]
    assert names == ["Background", "Sky", "SDEdit Sky (seed 3)", "Tree", "Cat", "SDEdit Cat (seed 5)", "Dot"]
    assert "failed Tree: this layer is over the memory budget" in messages[-1]
    assert "failed Dot: guide is 5x5; at least 8x8 pixels are needed" in messages[-1]  # checked per layer
    assert "failed Tree" in window.statusBar().currentMessage()
    assert len(fake_engine.calls) == 4 and refused == [4]  # Tree is not tried for the second variation
    window.doc.undo_stack.undo()
    assert _state(window.doc) == before and window.doc.undo_stack.index() == index


def test_every_layer_refused_is_a_failure_that_names_each_and_changes_nothing(qtbot, window, fake_engine):
    _refusing(fake_engine)
    layers = _layers(window, [(0, 0, 20, 20), (8, 8, 20, 20)], ["Sky", "Tree"])
    for la in layers:
        la.pixels[0, 0, :3] = REFUSED
    errors: list[str] = []
    window.error_shown.connect(lambda title, text: errors.append(text))
    before, index = _state(window.doc), window.doc.undo_stack.index()
    window.sdedit.set_options(where="layers")
    assert _generate(qtbot, window) == "failed"
    assert errors and "Sky: this layer is over" in errors[0] and "Tree: this layer is over" in errors[0]
    assert _state(window.doc) == before and window.doc.undo_stack.index() == index


def test_cancel_mid_batch_stops_at_once_and_leaves_the_document_as_it_was(qtbot, window, fake_engine):
    sdedit = fake_engine.sdedit
    second = threading.Event()

    def held(req, callback=None, should_stop=None):
        if len(fake_engine.calls) == 1:  # the first layer is done; hold the second until cancelled
            fake_engine.calls.append(req)
            second.set()
            deadline = time.monotonic() + 10
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.005)
            raise Cancelled()  # what the engine does once should_stop says so
        return sdedit(req, callback, should_stop)

    fake_engine.sdedit = held
    _layers(window, [(0, 0, 30, 20), (5, 5, 30, 30), (20, 10, 40, 30)])
    window.tool_objects["rect"].select([(4, 4), (50, 40)], "replace")
    before, index = _state(window.doc), window.doc.undo_stack.index()
    window.sdedit.set_options(where="layers", variations=2)
    outcome: list[str] = []
    window.sdedit.finished.connect(outcome.append)
    assert window.sdedit.generate()
    qtbot.waitUntil(second.is_set, timeout=10000)
    window.sdedit_panel.cancel.click()
    qtbot.waitUntil(lambda: bool(outcome), timeout=10000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=10000)
    assert outcome == ["cancelled"]
    assert len(fake_engine.calls) == 2  # the third layer never started
    assert _state(window.doc) == before and window.doc.undo_stack.index() == index
    assert window.results.entries == [] and window.canvas.preview is None


def test_layers_that_share_a_name_each_get_their_result(qtbot, window):
    _layers(window, [(0, 0, 20, 20), (10, 10, 20, 20)], ["Ink", "Ink"])
    window.sdedit.set_options(where="layers", seed=2, seed_locked=True)
    assert _generate(qtbot, window) == "done"
    names = [la.name for la in window.doc.layers]
    assert names == ["Background", "Ink", "SDEdit Ink (seed 2)", "Ink", "SDEdit Ink (seed 3)"]


@pytest.mark.parametrize("shared", [True, False])
def test_the_real_engine_through_the_runner_keeps_alike_layers_alike_with_shared_noise(
    qtbot, window, ddpm_model, shared
):
    """Two layers with the same paint: shared noise gives the same result on both, seed + n does not."""
    from noisebrush.gui.engines import EngineHolder

    window.engines = window.sdedit.engines = EngineHolder()
    a, b = _layers(window, [(0, 0, W, H), (0, 0, W, H)])
    b.pixels[...] = a.pixels
    window.tool_objects["rect"].select([(8, 8), (40, 40)], "replace")
    steps: list[int] = []
    window.sdedit.progress.connect(lambda step, total, left: steps.append(step))
    window.sdedit.set_options(
        where="layers", model=str(ddpm_model), steps=4, strength=0.5, seed=11, seed_locked=True, device="cpu"
    )
    window.sdedit.set_options(shared_noise=shared)
    assert _generate(qtbot, window, 120000) == "done"
    made = [la for la in window.doc.layers if la.name.startswith("SDEdit")]
    assert len(made) == 2 and steps  # progress came through the runner
    assert np.array_equal(made[0].pixels, made[1].pixels) is shared
