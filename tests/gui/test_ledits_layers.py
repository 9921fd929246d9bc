"""LEDITS of "Selected layers" runs as one batch through the runner the command line and the server use
(the same path as SDEdit's, gui/layer_batch.py): one result layer above each layer (one undo step), a
refused layer failing alone and named, cancel changing nothing, and the status bar saying which layer runs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import noisebrush.gui.layer_batch as layer_batch
from noisebrush.core.batch.runner import run_batch
from noisebrush.core.engine.progress import Progress
from noisebrush.core.errors import BadInput, Cancelled
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.pixels import intersect

W, H = 64, 48
REFUSED = (13, 13, 13)  # a layer whose first pixel is this is refused by the engine below
SCALE = 5.0  # the one concept's scale: the fake engine shifts the inverted colours by int(scale) % 7
LABEL = "LEDITS +cat"


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


def _on_layers(win, **options: object) -> None:
    ctl = win.ledits
    ctl.options.concepts.clear()
    ctl.add_concept("cat", scale=SCALE)
    ctl.options.where = "layers"
    for name, value in options.items():
        setattr(ctl.options, name, value)


def _apply(qtbot, win, timeout: int = 20000) -> str:
    outcome: list[str] = []
    win.ledits.finished.connect(outcome.append)
    said: list[str] = []
    win.ledits.error.connect(said.append)
    win.ledits.message.connect(said.append)
    assert win.ledits.apply(), said
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout)
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=timeout)
    return outcome[0]


def _refusing(fake_engine) -> list[str]:
    """Make the fake engine refuse a layer marked with REFUSED, as the memory budget refuses a frame; the
    list returned grows by one entry per refused request."""
    ledits = fake_engine.ledits
    refused: list[str] = []

    def run(req, callback=None, should_stop=None):
        if tuple(req.image[0, 0, :3]) == REFUSED:
            refused.append("refused")
            raise BadInput("this layer is over the memory budget")
        return ledits(req, callback, should_stop)

    fake_engine.ledits = run
    return refused


def _spy(monkeypatch) -> list:
    batches = []

    def spy(batch, executor, on_frame=None):
        batches.append(batch)
        return run_batch(batch, executor, on_frame)

    monkeypatch.setattr(layer_batch, "run_batch", spy)
    return batches


@pytest.mark.parametrize("shared", [True, False])
def test_selected_layers_run_through_the_batch_runner_as_ledits(
    qtbot, window, fake_engine, monkeypatch, shared
):
    batches = _spy(monkeypatch)
    _layers(window, [(0, 0, 20, 20), (10, 5, 30, 12), (30, 20, 34, 28)])
    window.tool_objects["rect"].select([(0, 0), (W, H)], "replace")  # each layer's mask: its own bounds
    panel = window.ledits_panel
    assert not panel.shared_noise.isVisibleTo(panel)  # only "Selected layers" has several layers
    _on_layers(window, seed=7)
    next(b for b in panel.where_group.buttons() if b.property("where") == "layers").click()
    assert panel.shared_noise.isVisibleTo(panel) and panel.shared_noise.isChecked()  # as before the runner
    if not shared:
        panel.shared_noise.click()
    assert window.ledits.options.shared_noise is shared
    assert _apply(qtbot, window) == "done"
    assert len(batches) == 1
    batch = batches[0]
    assert batch.output is None and batch.operation == "ledits" and batch.shared_noise is shared
    assert [f.name for f in batch.frames] == ["L0", "L1", "L2"]
    assert [m.shape for m in batch.masks.images] == [(20, 20), (12, 30), (28, 34)]
    assert [req.seed for req in fake_engine.calls] == ([7, 7, 7] if shared else [7, 8, 9])
    assert all([c.text for c in req.concepts] == ["cat"] for req in fake_engine.calls)
    names = [la.name for la in window.doc.layers]
    assert names == ["Background", "L0", LABEL, "L1", LABEL, "L2", LABEL]


def test_a_slider_rerun_of_selected_layers_goes_through_the_runner_and_replaces_each_result(
    qtbot, window, fake_engine, monkeypatch
):
    batches = _spy(monkeypatch)
    layers = _layers(window, [(0, 0, 30, 20), (20, 10, 40, 30)])
    _on_layers(window)
    assert _apply(qtbot, window) == "done"
    made = [window.doc.layers[window.doc.index_of(la) + 1] for la in layers]
    first = [m.pixels.copy() for m in made]
    index = window.doc.undo_stack.index()
    window.ledits_panel.rows[0].scale.setValue(int(SCALE * 10) + 10)  # 6.0: re-runs once the slider settles
    qtbot.waitUntil(lambda: len(batches) == 2, timeout=5000)
    qtbot.waitUntil(
        lambda: not window.runner.busy and window.doc.undo_stack.index() == index + 1, timeout=5000
    )
    assert batches[1].operation == "ledits"
    assert [la.name for la in window.doc.layers] == ["Background", "L0", LABEL, "L1", LABEL]
    for m, before in zip(made, first, strict=True):
        assert m in window.doc.layers and not np.array_equal(m.pixels, before)
    window.doc.undo_stack.undo()  # the whole re-run is one step
    for m, before in zip(made, first, strict=True):
        np.testing.assert_array_equal(m.pixels, before)


box = st.tuples(st.integers(-20, W - 4), st.integers(-20, H - 4), st.integers(4, 40), st.integers(4, 30))


def _at_least_8_on_canvas(b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = b
    return x, y, max(w, 8 - x), max(h, 8 - y)


on_canvas = st.tuples(
    st.integers(-12, W - 8), st.integers(-12, H - 8), st.integers(8, 40), st.integers(8, 30)
).map(_at_least_8_on_canvas)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), bounds=st.lists(on_canvas, min_size=2, max_size=4), selection=st.none() | box)
def test_each_layer_gets_its_result_above_it_the_refused_fail_alone_and_one_undo_removes_all(
    qtbot, window, fake_engine, data, bounds, selection
):
    fake_engine.steps, fake_engine.step_s = 1, 0.0
    fake_engine.calls.clear()
    if not hasattr(fake_engine, "refusing"):
        fake_engine.refusing = _refusing(fake_engine)
    refused_calls = fake_engine.refusing
    refused_calls.clear()
    layers = _layers(window, bounds)
    refused = data.draw(st.sets(st.sampled_from(range(len(layers)))), label="refused")
    for i in refused:  # all of it, so whatever part the selection cuts carries the mark
        layers[i].pixels[..., :3] = REFUSED
    doc = window.doc
    if selection is not None:
        x, y, w, h = selection
        window.tool_objects["rect"].select([(x, y), (x + w, y + h)], "replace")
    sel = doc.selection.bounds
    expected = {}
    for la in layers:
        within = intersect((la.x, la.y, la.width, la.height), doc.rect)
        region = within if sel is None or within is None else intersect(sel, within)
        if region is not None:
            expected[la.uid] = region
    if not expected:
        return  # nothing to edit: the controller says so
    refused_uids = {layers[i].uid for i in refused} & set(expected)
    messages: list[str] = []
    window.ledits.message.connect(messages.append)
    errors: list[str] = []
    window.error_shown.connect(lambda title, text: errors.append(text))
    before, index = _state(doc), doc.undo_stack.index()
    _on_layers(window)
    outcome = _apply(qtbot, window)
    assert len(refused_calls) == len(refused_uids)
    if refused_uids == set(expected):  # every layer refused: a failure naming each, nothing changed
        assert outcome == "failed"
        assert all(f"{la.name}: this layer is over" in errors[-1] for la in layers if la.uid in expected)
        assert _state(doc) == before and doc.undo_stack.index() == index
        return
    assert outcome == "done"
    shift = int(SCALE) % 7
    for la in layers:
        i = doc.index_of(la)
        above = doc.layers[i + 1] if i + 1 < len(doc.layers) else None
        if la.uid not in expected or la.uid in refused_uids:
            assert above is None or above.name != LABEL
            if la.uid in refused_uids:
                assert f"failed {la.name}: this layer is over the memory budget" in messages[-1]
            continue
        assert above is not None and above.name == LABEL
        assert (above.x, above.y, above.width, above.height) == expected[la.uid]
        under = la.pixels[above.y - la.y :, above.x - la.x :][: above.height, : above.width]
        np.testing.assert_array_equal(above.pixels[..., :3], 255 - under[..., :3] - shift)
    assert doc.undo_stack.index() == index + 1  # the whole batch is one step
    doc.undo_stack.undo()
    assert _state(doc) == before


def test_a_refused_layer_fails_alone_and_the_status_bar_names_it(qtbot, window, fake_engine):
    refused = _refusing(fake_engine)
    sky, tree, cat, dot = _layers(
        window,
        [(0, 0, 30, 20), (5, 5, 30, 30), (20, 10, 40, 30), (59, 43, 5, 5)],
        ["Sky", "Tree", "Cat", "Dot"],
    )
    tree.pixels[0, 0, :3] = REFUSED
    before, index = _state(window.doc), window.doc.undo_stack.index()
    _on_layers(window)
    assert _apply(qtbot, window) == "done"
    names = [la.name for la in window.doc.layers]
    assert names == ["Background", "Sky", LABEL, "Tree", "Cat", LABEL, "Dot"]
    status = window.statusBar().currentMessage()
    assert "failed Tree: this layer is over the memory budget" in status
    assert "failed Dot: image is 5x5; at least 8x8 pixels are needed" in status  # checked per layer
    assert refused == ["refused"] and len(fake_engine.calls) == 2
    window.doc.undo_stack.undo()
    assert _state(window.doc) == before and window.doc.undo_stack.index() == index


def test_cancel_mid_batch_stops_at_once_and_leaves_the_document_as_it_was(qtbot, window, fake_engine):
    ledits = fake_engine.ledits
    second = threading.Event()
    steps: list[str] = []

    def held(req, callback=None, should_stop=None):
        if len(fake_engine.calls) == 1:  # the first layer is done; hold the second until cancelled
            fake_engine.calls.append(req)
            callback(Progress(4, 4, 0, (0, 0, 8, 8), "invert"))  # a run's last step always reaches the bar
            second.set()
            deadline = time.monotonic() + 10
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.005)
            raise Cancelled()  # what the engine does once should_stop says so
        return ledits(req, callback, should_stop)

    fake_engine.ledits = held
    _layers(window, [(0, 0, 30, 20), (5, 5, 30, 30), (20, 10, 40, 30)])
    window.tool_objects["rect"].select([(4, 4), (50, 40)], "replace")
    before, index = _state(window.doc), window.doc.undo_stack.index()
    _on_layers(window)
    window.ledits.progress.connect(lambda *_: steps.append(window.step_label.text()))
    outcome: list[str] = []
    window.ledits.finished.connect(outcome.append)
    assert window.ledits.apply()
    qtbot.waitUntil(second.is_set, timeout=10000)
    qtbot.waitUntil(lambda: "layer 2 of 3, step 4/4" in window.step_label.text(), timeout=5000)
    assert any(s.startswith("layer 1 of 3, step ") for s in steps)
    window.ledits_panel.cancel.click()
    qtbot.waitUntil(lambda: bool(outcome), timeout=10000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=10000)
    assert outcome == ["cancelled"]
    assert len(fake_engine.calls) == 2  # the third layer never started
    assert _state(window.doc) == before and window.doc.undo_stack.index() == index
    assert window.canvas.preview is None


@pytest.mark.parametrize("shared", [True, False])
def test_the_real_engine_through_the_runner_keeps_alike_layers_alike_with_shared_noise(
    qtbot, window, sd_model, shared
):
    """Two layers with the same paint on a tiny random text model: shared noise edits both the same way,
    seed + n does not; the status bar says which layer is running."""
    from noisebrush.gui.engines import EngineHolder

    window.engines = window.ledits.engines = EngineHolder()
    a, b = _layers(window, [(0, 0, W, H), (0, 0, W, H)])
    b.pixels[...] = a.pixels
    window.tool_objects["rect"].select([(8, 8), (40, 40)], "replace")
    places: list[str] = []
    window.ledits.progress.connect(lambda *_: places.append(window.step_label.text()))
    _on_layers(window, model=str(sd_model), steps=6, seed=11, device="cpu", shared_noise=shared)
    window.ledits.options.concepts[0].text = "a red barn"
    assert _apply(qtbot, window, 120000) == "done"
    made = [la for la in window.doc.layers if la.name == "LEDITS +a red barn"]
    assert len(made) == 2
    assert {p.split(",")[0] for p in places} == {
        "layer 1 of 2",
        "layer 2 of 2",
    }  # progress through the runner
    assert np.array_equal(made[0].pixels, made[1].pixels) is shared
