"""The SDEdit panel's LoRA picker and Control section: what the models folder holds is listed, what the painter
picks goes on the request as the command line would send it, a layer as the control image is that layer's
pixels over the guide's box, and the bundled prior (which takes neither) shows both off and gets neither."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PyQt6.QtCore import QSettings

from noisebrush.core.engine.requests import Lora, SDEditRequest
from noisebrush.gui.engines import EngineHolder
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.panels.addons import LoraRow
from noisebrush.gui.targets import layer_region


def _wait_done(qtbot, ctl, timeout: int = 60000) -> str:
    outcome: list[str] = []
    ctl.finished.connect(outcome.append)
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout)
    qtbot.waitUntil(lambda: not ctl.runner.busy, timeout=timeout)
    return outcome[0]


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A models folder with two LoRA files (one in a subfolder), things that are not LoRA files, two
    ControlNets (a diffusers folder and a single file), a folder that is no ControlNet, and a Stable
    Diffusion folder the fake engine runs (only its configs are read before a run)."""
    root = tmp_path / "models"
    (root / "loras" / "styles").mkdir(parents=True)
    (root / "loras" / "detail.safetensors").write_bytes(b"x")
    (root / "loras" / "styles" / "Watercolour.SAFETENSORS").write_bytes(b"x")
    (root / "loras" / "notes.txt").write_text("not a LoRA")
    (root / "loras" / "old.ckpt").write_bytes(b"pickle")
    (root / "controlnet" / "scribble").mkdir(parents=True)
    (root / "controlnet" / "scribble" / "config.json").write_text("{}")
    (root / "controlnet" / "edges.safetensors").write_bytes(b"x")
    (root / "controlnet" / "empty").mkdir()
    sd = root / "sd"
    sd.mkdir()
    (sd / "model_index.json").write_text(
        json.dumps({"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["x", "y"]})
    )
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(root))
    return root


def _looked_again(qtbot, window, model: Path) -> None:
    """On a Stable Diffusion model (for any other both sections are off, their buttons too), look again.
    The window lists its models on a thread and then picks one of them: wait for that, then pick ours."""
    qtbot.waitUntil(lambda: bool(window.sdedit_panel.models), timeout=20000)
    window.sdedit.set_options(model=str(model))
    window.sdedit_panel.loras.refresh_button.click()
    window.sdedit_panel.control.refresh_button.click()


def _scene(win, w: int = 96, h: int = 64) -> None:
    win.doc.new(w, h)
    layer = win.doc.add_layer("Sketch")
    layer.pixels[10:50, 20:70] = (30, 120, 40, 255)
    win.doc.touched(layer, None)


def _generate(qtbot, window, fake_engine) -> SDEditRequest:
    window.sdedit.set_options(seed=3, seed_locked=True)
    assert window.sdedit.generate()
    assert _wait_done(qtbot, window.sdedit) == "done"
    return fake_engine.calls[-1]


def test_picker_lists_the_lora_files_and_controlnets_in_the_models_folder(qtbot, window, models):
    _looked_again(qtbot, window, models / "sd")
    files = window.sdedit_panel.loras.files
    assert [files.itemText(i) for i in range(files.count())] == [
        "detail.safetensors",
        "styles/Watercolour.SAFETENSORS",
    ]
    assert files.itemData(1) == str(models / "loras" / "styles" / "Watercolour.SAFETENSORS")
    nets = window.sdedit_panel.control.controlnet
    assert [nets.itemText(i) for i in range(nets.count())] == ["edges.safetensors", "scribble"]
    assert window.sdedit.options.controlnet == str(models / "controlnet" / "edges.safetensors")


def test_an_empty_models_folder_says_where_files_go(qtbot, window, models, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(tmp_path / "nothing"))
    _looked_again(qtbot, window, models / "sd")
    panel = window.sdedit_panel
    assert panel.loras.files.itemText(0) == "none found"
    assert str(tmp_path / "nothing" / "loras") in panel.loras.files.toolTip()
    assert not panel.loras.add.isEnabled()
    assert panel.control.controlnet.itemText(0) == "none found"
    assert str(tmp_path / "nothing" / "controlnet") in panel.control.controlnet.toolTip()
    assert not panel.control.source.isEnabled()


def test_two_loras_with_weights_go_on_the_request_and_one_comes_off(qtbot, window, fake_engine, models):
    _scene(window)
    _looked_again(qtbot, window, models / "sd")
    picker = window.sdedit_panel.loras
    assert picker.isEnabled()
    for i in (1, 0):
        picker.files.setCurrentIndex(i)
        picker.add.click()
    picker.files.setCurrentIndex(0)
    assert not picker.add.isEnabled()  # already on: its weight is changed in its row
    rows = picker.findChildren(LoraRow)
    assert [r.name.text() for r in rows] == ["styles/Watercolour.SAFETENSORS", "detail.safetensors"]
    rows[0].weight.setValue(0.8)
    rows[1].weight.setValue(-0.45)
    water, detail = (
        str(p)
        for p in (
            models / "loras" / "styles" / "Watercolour.SAFETENSORS",
            models / "loras" / "detail.safetensors",
        )
    )
    req = _generate(qtbot, window, fake_engine)
    assert req.loras == (Lora(water, 0.8), Lora(detail, -0.45))
    assert req.controlnet == "" and req.control is None  # control is "none" by default
    picker.rows[0].remove.click()
    assert [r.name.text() for r in picker.findChildren(LoraRow)] == ["detail.safetensors"]  # what is shown
    assert _generate(qtbot, window, fake_engine).loras == (Lora(detail, -0.45),)


def test_lora_weight_spin_follows_the_request_bounds(qtbot, window, models):
    from noisebrush.core.engine.requests import MAX_LORA_WEIGHT, check_loras
    from noisebrush.core.errors import BadInput

    _looked_again(qtbot, window, models / "sd")
    picker = window.sdedit_panel.loras
    picker.add.click()
    spin = picker.rows[0].weight
    assert (spin.minimum(), spin.maximum(), spin.value()) == (-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT, 1.0)
    spin.setValue(spin.maximum() + 5)  # the widget holds it at the bound, which the request takes
    check_loras(window.sdedit.options.loras)
    with pytest.raises(BadInput):
        check_loras([Lora("x", spin.maximum() + 0.01)])


def _control_layer(doc) -> Layer:
    """A hidden layer, offset so that it covers only part of the guide's box, with distinct pixels."""
    rng = np.random.default_rng(5)
    layer = Layer("Lines", rng.integers(0, 256, (40, 60, 4), dtype=np.uint8), 50, -8)
    layer.visible = False
    doc.insert_layer(layer, len(doc.layers))
    return layer


def test_a_layer_as_control_gives_its_pixels_over_the_guides_box(qtbot, window, fake_engine, models):
    _scene(window)
    doc = window.doc
    lines = _control_layer(doc)
    doc.set_active(doc.layers[1])  # the sketch: the guide is the visible image, the lines stay hidden
    window.tool_objects["rect"].select([(30, 6), (80, 40)], "replace")
    window.sdedit.set_options(where="selection", control_scale=0.7)
    _looked_again(qtbot, window, models / "sd")
    section = window.sdedit_panel.control
    section.controlnet.setCurrentIndex(section.controlnet.findText("scribble"))
    section.source.setCurrentIndex(section.source.findData("layer"))
    assert section.layer.isVisibleTo(section)
    section.layer.setCurrentIndex(section.layer.findText("Lines"))
    req = _generate(qtbot, window, fake_engine)
    assert req.controlnet == str(models / "controlnet" / "scribble") and req.control_scale == 0.7
    x, y, w, h = _box_of(req, doc)
    # Worked out here by pasting the layer on an empty canvas: its pixels where it reaches, clear elsewhere.
    canvas = np.zeros((doc.height + 100, doc.width + 100, 4), np.uint8)
    canvas[50 + lines.y : 50 + lines.y + lines.height, 50 + lines.x : 50 + lines.x + lines.width] = (
        lines.pixels
    )
    assert np.array_equal(req.control, canvas[50 + y : 50 + y + h, 50 + x : 50 + x + w])
    assert req.control.shape[:2] == req.guide.shape[:2]


def _box_of(req: SDEditRequest, doc) -> tuple[int, int, int, int]:
    """The guide's document box: the selection's bounds grown by the request's context, within the canvas."""
    x0, y0 = max(0, 30 - req.context), max(0, 6 - req.context)
    x1, y1 = min(doc.width, 80 + req.context), min(doc.height, 40 + req.context)
    assert (y1 - y0, x1 - x0) == req.guide.shape[:2]
    return x0, y0, x1 - x0, y1 - y0


@pytest.mark.parametrize(("source", "control_map"), [("edges", "edges"), ("scribble", "scribble")])
def test_lines_of_the_guide_send_the_map_and_none_sends_no_control(
    qtbot, window, fake_engine, models, source, control_map
):
    _scene(window)
    _looked_again(qtbot, window, models / "sd")
    section = window.sdedit_panel.control
    section.source.setCurrentIndex(section.source.findData(source))
    req = _generate(qtbot, window, fake_engine)
    assert (req.controlnet, req.control, req.control_map) == (
        window.sdedit.options.controlnet,
        None,
        control_map,
    )
    assert not section.layer.isVisibleTo(section)
    section.source.setCurrentIndex(section.source.findData("none"))
    req = _generate(qtbot, window, fake_engine)
    assert (req.controlnet, req.control) == ("", None)


def test_a_deleted_control_layer_stops_the_run_with_why(qtbot, window, fake_engine, models):
    _scene(window)
    lines = _control_layer(window.doc)
    window.sdedit.set_options(control_source="layer", control_layer=lines.uid)
    _looked_again(qtbot, window, models / "sd")
    window.doc.delete_layer(lines)
    assert window.sdedit_panel.control.layer.currentIndex() == -1  # blank, not another layer
    errors: list[str] = []
    window.sdedit.error.connect(errors.append)
    n = len(fake_engine.calls)
    assert not window.sdedit.generate()
    assert errors and "control layer is no longer in the document" in errors[0]
    assert len(fake_engine.calls) == n


def test_bundled_prior_shows_both_sections_off_and_gets_neither(qtbot, window, fake_engine, models):
    _scene(window)
    _looked_again(qtbot, window, models / "sd")
    panel = window.sdedit_panel
    panel.loras.add.click()
    panel.control.source.setCurrentIndex(panel.control.source.findData("edges"))
    window.sdedit.set_options(model="default")
    for section, what in ((panel.loras, "LoRA files"), (panel.control, "ControlNets")):
        assert not section.isEnabled()
        assert section.toolTip().startswith(
            f"{what} apply to Stable Diffusion models; the bundled prior is a pixel"
        )
    req = _generate(qtbot, window, fake_engine)
    assert (req.loras, req.controlnet, req.control) == ((), "", None)
    # The picks are kept: back on a Stable Diffusion model they apply again.
    window.sdedit.set_options(model=str(models / "sd"))
    assert panel.loras.isEnabled() and panel.control.isEnabled()
    req = _generate(qtbot, window, fake_engine)
    assert len(req.loras) == 1 and req.controlnet and req.control_map == "edges"


@settings(max_examples=60, deadline=None)
@given(
    lx=st.integers(-20, 20),
    ly=st.integers(-20, 20),
    lw=st.integers(1, 16),
    lh=st.integers(1, 16),
    box=st.tuples(st.integers(-10, 20), st.integers(-10, 20), st.integers(1, 24), st.integers(1, 24)),
)
def test_layer_region_is_the_layer_pasted_at_its_offset(lx, ly, lw, lh, box):
    rng = np.random.default_rng((lx + 20) * 100 + ly + 20)
    layer = Layer("L", rng.integers(1, 256, (lh, lw, 4), dtype=np.uint8), lx, ly)
    canvas = np.zeros((120, 120, 4), np.uint8)  # document (0, 0) at canvas (50, 50)
    canvas[50 + ly : 50 + ly + lh, 50 + lx : 50 + lx + lw] = layer.pixels
    x, y, w, h = box
    assert np.array_equal(layer_region(layer, box), canvas[50 + y : 50 + y + h, 50 + x : 50 + x + w])


# --- end to end: the Studio's worker, a tiny Stable Diffusion and a LoRA ----------------------------------


@pytest.fixture
def sd_window(qtbot, tmp_path, sd_model, engine, one_torch_thread):
    from noisebrush.gui.window import MainWindow

    settings_file = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(
        settings=settings_file, engines=EngineHolder(lambda: engine), recovery_folder=tmp_path / "rec"
    )
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.doc.undo_stack.setClean()
    if win.runner.busy:
        win.runner.cancel()
        win.runner.wait(10000)
    win.close()


def test_studio_runs_a_tiny_sd_with_a_lora_and_a_layer_as_control(
    qtbot, sd_window, sd_model, engine, tmp_path, monkeypatch
):
    from noisebrush.bench import standins

    models = tmp_path / "models"
    lora = standins.tiny_lora(models / "loras" / "style.safetensors", sd_model, "kohya", seed=1)
    net = standins.tiny_controlnet(models / "controlnet" / "lines", sd_model, seed=2)
    monkeypatch.setenv("NOISEBRUSH_MODELS", str(models))
    win = sd_window
    win.doc.new(48, 40)
    sketch = win.doc.add_layer("Sketch")
    sketch.pixels[8:30, 10:40] = (200, 60, 40, 255)
    win.doc.touched(sketch, None)
    lines = _control_layer(win.doc)
    win.sdedit.set_options(
        model=str(sd_model),
        strength=0.6,
        steps=5,
        seed=4,
        seed_locked=True,
        prompt="a red barn",
        device="cpu",
    )
    _looked_again(qtbot, win, sd_model)
    panel = win.sdedit_panel
    panel.loras.add.click()
    panel.loras.rows[0].weight.setValue(0.8)
    panel.control.source.setCurrentIndex(panel.control.source.findData("layer"))
    panel.control.layer.setCurrentIndex(panel.control.layer.findText("Lines"))
    guide = win.doc.composite()
    assert win.sdedit.generate()
    assert _wait_done(qtbot, win.sdedit) == "done"
    made = win.doc.layers[-1]
    assert made.name.startswith("SDEdit") and made.rect == (0, 0, 48, 40)

    def direct(**kw):
        req = SDEditRequest(
            guide=guide,
            model=str(sd_model),
            strength=0.6,
            steps=5,
            seed=4,
            prompt="a red barn",
            device="cpu",
            **kw,
        )
        return engine.sdedit(req)[0]

    control = layer_region(lines, (0, 0, 48, 40))
    same = direct(loras=(Lora(str(lora), 0.8),), controlnet=str(net), control=control)
    assert np.array_equal(made.pixels[..., :3], same[..., :3])  # exactly what the command line would run
    plain = direct()
    assert np.abs(made.pixels[..., :3].astype(int) - plain[..., :3]).max() > 8


def test_every_selected_layer_takes_a_control_layer_only_over_one_box(qtbot, window, fake_engine, models):
    _scene(window)
    doc = window.doc
    lines = _control_layer(doc)
    background, sketch = doc.layers[0], doc.layers[1]
    doc.set_active(sketch, {background.uid, sketch.uid})
    window.sdedit.set_options(where="layers", control_source="layer", control_layer=lines.uid)
    _looked_again(qtbot, window, models / "sd")
    n = len(fake_engine.calls)
    req = _generate(qtbot, window, fake_engine)  # both layers cover the canvas: one box, one control image
    assert len(fake_engine.calls) == n + 2
    expected = layer_region(lines, doc.rect)
    assert all(np.array_equal(r.control, expected) for r in fake_engine.calls[n:]) and req.controlnet
    small = Layer("Patch", np.full((20, 20, 4), 200, np.uint8), 5, 5)
    doc.insert_layer(small, 1)
    doc.set_active(sketch, {small.uid, sketch.uid})
    errors: list[str] = []
    window.sdedit.error.connect(errors.append)
    assert not window.sdedit.generate()
    assert errors and "different boxes" in errors[0]


def test_live_runs_take_the_panels_loras_and_control_too(qtbot, window, fake_engine, models):
    """A few-step LoRA is what Live wants most: Live's request is the panel's, one result, a live draft (no
    refine stage: the engine's plan.live_run)."""
    from noisebrush.gui.targets import build_targets

    _scene(window)
    _looked_again(qtbot, window, models / "sd")
    picker = window.sdedit_panel.loras
    picker.files.setCurrentIndex(0)
    picker.add.click()
    window.sdedit.set_options(control_source="edges", variations=3)
    (target,) = build_targets(window.doc, "selection")
    req = window.live.request(target)
    assert req.loras == (Lora(str(models / "loras" / "detail.safetensors"), 1.0),)
    assert req.controlnet == str(models / "controlnet" / "edges.safetensors") and req.control_map == "edges"
    assert (req.variations, req.live) == (1, True)
