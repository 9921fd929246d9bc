"""Files: OpenRaster round trips, flat formats, corrupt files, autosave recovery, recent files."""

from __future__ import annotations

import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from noisebrush.gui.imageio import read_document, write_document
from noisebrush.gui.layer import Layer
from noisebrush.gui.ora import FileFormatError, read_ora, write_ora


def _layers() -> list[Layer]:
    rng = np.random.default_rng(0)
    bg = Layer("Background", np.full((48, 64, 4), 255, np.uint8))
    paint = Layer("Paint \u00e9 & <x>", rng.integers(0, 256, (20, 30, 4), dtype=np.uint8), 7, 11, 0.6)
    hidden = Layer("Hidden", rng.integers(0, 256, (10, 10, 4), dtype=np.uint8), -3, 40, 1.0, False, True)
    return [bg, paint, hidden]


def test_ora_layout_is_what_krita_and_gimp_read(tmp_path):
    path = tmp_path / "a.ora"
    write_ora(path, 64, 48, _layers())
    with zipfile.ZipFile(path) as z:
        first = z.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert z.read("mimetype") == b"image/openraster"
        names = z.namelist()
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= set(names)
        root = ET.fromstring(z.read("stack.xml"))
        assert (root.get("w"), root.get("h")) == ("64", "48")
        srcs = [el.get("src") for el in root.iter("layer")]
        assert all(s.startswith("data/") and s in names for s in srcs)
        assert [el.get("name") for el in root.iter("layer")][0] == "Hidden"  # top first
        thumb = Image.open(z.open("Thumbnails/thumbnail.png"))
        assert max(thumb.size) <= 256
        assert Image.open(z.open("mergedimage.png")).size == (64, 48)
    with open(path, "rb") as f:
        assert f.read(38)[30:38] == b"mimetype"


def test_ora_round_trip_keeps_layers_names_offsets_opacity_pixels(tmp_path):
    path = tmp_path / "b.ora"
    layers = _layers()
    write_ora(path, 64, 48, layers)
    w, h, back = read_ora(path)
    assert (w, h) == (64, 48)
    assert len(back) == len(layers)
    for a, b in zip(layers, back, strict=True):
        assert (a.name, a.x, a.y, a.visible, a.locked) == (b.name, b.x, b.y, b.visible, b.locked)
        assert abs(a.opacity - b.opacity) < 1e-3
        assert np.array_equal(a.pixels, b.pixels)


@pytest.mark.parametrize(
    "payload",
    [
        b"not a zip at all",
        b"PK\x03\x04broken",
    ],
)
def test_corrupt_ora_raises_a_clear_error(tmp_path, payload):
    path = tmp_path / "c.ora"
    path.write_bytes(payload)
    with pytest.raises(FileFormatError, match="not an OpenRaster|damaged"):
        read_ora(path)


def test_ora_with_missing_layer_or_wrong_mimetype(tmp_path):
    path = tmp_path / "d.ora"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "image/openraster")
        z.writestr(
            "stack.xml", '<image w="4" h="4"><stack><layer name="x" src="data/gone.png"/></stack></image>'
        )
    with pytest.raises(FileFormatError, match="missing"):
        read_ora(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/zip")
    with pytest.raises(FileFormatError, match="mimetype"):
        read_ora(path)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg"])
def test_flat_formats_save_the_composite(tmp_path, suffix):
    layers = [Layer("bg", np.full((16, 16, 4), (10, 200, 30, 255), np.uint8))]
    path = tmp_path / f"e{suffix}"
    write_document(path, 16, 16, layers)
    w, h, back = read_document(path)
    assert (w, h) == (16, 16) and len(back) == 1
    tol = 0 if suffix == ".png" else 12
    assert np.abs(back[0].pixels.astype(int) - layers[0].pixels.astype(int)).max() <= tol


def test_window_save_then_open_gives_the_same_document(qtbot, window, tmp_path):
    doc = window.doc
    doc.load(64, 48, _layers(), None)
    doc.set_layer_property(doc.layers[1], "name", "Renamed")
    path = str(tmp_path / "doc.ora")
    assert window.save_to(path, background=False)
    assert not doc.modified and doc.path == path
    saved = [(la.name, la.rect, la.opacity, la.visible, la.pixels.copy()) for la in doc.layers]
    doc.new(10, 10)
    assert window.open_path(path)
    assert (doc.width, doc.height) == (64, 48)
    for (name, rect, opacity, visible, pixels), la in zip(saved, doc.layers, strict=True):
        assert (la.name, la.rect, la.visible) == (name, rect, visible)
        assert abs(la.opacity - opacity) < 1e-3
        assert np.array_equal(la.pixels, pixels)


def test_background_save_marks_clean(qtbot, window, tmp_path):
    window.doc.add_layer()
    path = str(tmp_path / "bg.ora")
    with qtbot.waitSignal(window.saved, timeout=10000):
        window.save_to(path)
    assert not window.doc.modified


@pytest.mark.parametrize("name,payload", [("bad.ora", b"garbage"), ("bad.png", b"\x89PNG\r\n\x1a\nnope")])
def test_corrupt_file_gives_an_error_dialog_and_leaves_the_document_untouched(
    qtbot, window, tmp_path, name, payload
):
    from PyQt6.QtWidgets import QMessageBox

    doc = window.doc
    layer = doc.add_layer("Mine")
    layer.pixels[5:10, 5:10] = 99
    state = [(la.uid, la.name, la.pixels.copy()) for la in doc.layers]
    index = doc.undo_stack.index()
    bad = tmp_path / name
    bad.write_bytes(payload)
    with qtbot.waitSignal(window.error_shown, timeout=3000) as sig:
        assert not window.open_path(str(bad))
    assert name in sig.args[1]
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and name in boxes[0].text()
    assert [(la.uid, la.name) for la in doc.layers] == [(u, n) for u, n, _ in state]
    assert all(np.array_equal(la.pixels, p) for la, (_, _, p) in zip(doc.layers, state, strict=True))
    assert doc.undo_stack.index() == index
    boxes[0].accept()


def test_autosave_writes_a_recovery_file_that_is_offered_back(qtbot, window, tmp_path, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    layer = window.doc.add_layer("Unsaved work")
    layer.pixels[0:4, 0:4] = 200
    assert window.autosaver.save_now()
    window.autosaver.wait()
    assert window.autosaver.pending() is not None
    window.doc.new(32, 32)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.offer_recovery()
    assert [la.name for la in window.doc.layers][-1] == "Unsaved work"
    assert window.doc.modified


def test_recent_files_menu(qtbot, window, tmp_path):
    path = tmp_path / "r.png"
    Image.new("RGBA", (12, 12), (1, 2, 3, 255)).save(path)
    assert window.open_path(str(path))
    titles = [a.text() for a in window.recent_menu.actions()]
    assert titles[0] == "r.png"
