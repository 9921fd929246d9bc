"""Files: OpenRaster round trips, flat formats, corrupt files, reads and writes off the GUI thread,
atomic saves, autosave recovery, recent files."""

from __future__ import annotations

import io
import threading
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from PyQt6.QtCore import QTimer

from noisebrush.gui.model.imageio import read_document, write_document
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.ora import FileFormatError, read_ora, write_ora


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


def _save(qtbot, window, path: str) -> None:
    with qtbot.waitSignal(window.files.saved, timeout=20000):
        assert window.files.save_to(path)


def _open(qtbot, window, path: str) -> None:
    with qtbot.waitSignal(window.files.opened, timeout=20000):
        assert window.files.open_path(path)


def test_window_save_then_open_gives_the_same_document(qtbot, window, tmp_path):
    doc = window.doc
    doc.load(64, 48, _layers(), None)
    doc.set_layer_property(doc.layers[1], "name", "Renamed")
    path = str(tmp_path / "doc.ora")
    _save(qtbot, window, path)
    assert not doc.modified and doc.path == path
    saved = [(la.name, la.rect, la.opacity, la.visible, la.pixels.copy()) for la in doc.layers]
    doc.new(10, 10)
    _open(qtbot, window, path)
    assert (doc.width, doc.height) == (64, 48)
    for (name, rect, opacity, visible, pixels), la in zip(saved, doc.layers, strict=True):
        assert (la.name, la.rect, la.visible) == (name, rect, visible)
        assert abs(la.opacity - opacity) < 1e-3
        assert np.array_equal(la.pixels, pixels)


class Gate:
    """Holds a file job inside its thread until the test opens the gate; records the thread."""

    def __init__(self, fn):
        self.fn, self.event, self.threads = fn, threading.Event(), []

    def __call__(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        assert self.event.wait(20), "the test never opened the gate"
        return self.fn(*args, **kwargs)


def _event_loop_runs(qtbot) -> None:
    ticks: list[int] = []
    QTimer.singleShot(5, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: bool(ticks), timeout=2000)


def test_open_decodes_off_the_gui_thread_with_the_busy_state_shown(qtbot, window, tmp_path, monkeypatch):
    import noisebrush.gui.files as files

    path = tmp_path / "big.png"
    Image.new("RGBA", (300, 200), (9, 8, 7, 255)).save(path)
    gate = Gate(files.read_document)
    monkeypatch.setattr(files, "read_document", gate)
    doc = window.doc
    before = [la.uid for la in doc.layers]
    assert window.files.open_path(str(path))
    qtbot.waitUntil(lambda: bool(gate.threads), timeout=5000)
    _event_loop_runs(qtbot)  # the window is not frozen while the file decodes
    assert "Opening big.png" in window.file_label.text() and window.file_bar.isVisible()
    assert [la.uid for la in doc.layers] == before  # nothing changes before the file is read whole
    assert not window.files.save_to(str(tmp_path / "other.ora"))  # one file job at a time
    with qtbot.waitSignal(window.files.opened, timeout=10000):
        gate.event.set()
    assert gate.threads[0] != threading.get_ident()
    assert (doc.width, doc.height) == (300, 200)
    assert window.file_label.text() == "" and not window.file_bar.isVisible()


def test_save_encodes_off_the_gui_thread_and_replaces_the_file_at_once(qtbot, window, tmp_path, monkeypatch):
    import noisebrush.gui.files as files

    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "doc.ora"
    path.write_bytes(b"the previous version")
    gate = Gate(files.write_document)
    monkeypatch.setattr(files, "write_document", gate)
    window.doc.add_layer("New")
    assert window.files.save_to(str(path))
    qtbot.waitUntil(lambda: bool(gate.threads), timeout=5000)
    _event_loop_runs(qtbot)
    assert "Saving doc.ora" in window.file_label.text()
    assert path.read_bytes() == b"the previous version"
    with qtbot.waitSignal(window.files.saved, timeout=20000):
        gate.event.set()
    assert gate.threads[0] != threading.get_ident()
    assert [la.name for la in read_ora(path)[2]] == ["Background", "New"]
    assert [p.name for p in path.parent.iterdir()] == ["doc.ora"]  # no temporary file left
    assert not window.doc.modified


def _full_disk_midway(monkeypatch, suffix: str) -> None:
    """Make the writer fail after part of the file has gone out, as a full disk does."""
    import zipfile as zf

    import PIL.Image

    def no_space() -> OSError:
        return OSError(28, "No space left on device")

    if suffix == ".ora":
        real, calls = zf.ZipFile.writestr, []

        def writestr(self, *args, **kwargs):
            calls.append(1)
            if len(calls) > 2:  # the mimetype and stack.xml are out, the layers are not
                raise no_space()
            return real(self, *args, **kwargs)

        monkeypatch.setattr(zf.ZipFile, "writestr", writestr)
    else:

        def save(self, fp, *args, **kwargs):
            fp.write(b"\x89PNG\r\n\x1a\n half an image")
            raise no_space()

        monkeypatch.setattr(PIL.Image.Image, "save", save)


@pytest.mark.parametrize("suffix", [".ora", ".png"])
def test_failed_save_keeps_the_old_file_and_leaves_no_partial_file(
    qtbot, window, tmp_path, monkeypatch, suffix
):
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / f"doc{suffix}"
    path.write_bytes(b"the previous version")
    window.doc.add_layer("Unsaved")
    _full_disk_midway(monkeypatch, suffix)
    with qtbot.waitSignal(window.error_shown, timeout=20000) as sig:
        assert window.files.save_to(str(path))
    assert sig.args[0] == "Cannot save file"
    assert path.name in sig.args[1] and "No space left on device" in sig.args[1]
    assert path.read_bytes() == b"the previous version"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert window.doc.modified


def test_painting_during_an_open_is_not_thrown_away_unasked(qtbot, window, tmp_path, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    import noisebrush.gui.files as files

    path = tmp_path / "other.png"
    Image.new("RGBA", (20, 10), (1, 2, 3, 255)).save(path)
    gate = Gate(files.read_document)
    monkeypatch.setattr(files, "read_document", gate)
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Cancel
    )
    assert window.files.open_path(str(path))
    window.doc.add_layer("Painted while it loads")
    gate.event.set()
    qtbot.waitUntil(lambda: bool(asked) and not window.files.busy, timeout=10000)
    assert window.doc.layers[-1].name == "Painted while it loads"


def test_close_waits_for_a_save_under_way(qtbot, window, tmp_path, monkeypatch):
    import noisebrush.gui.files as files

    gate = Gate(files.write_document)
    monkeypatch.setattr(files, "write_document", gate)
    path = tmp_path / "closing.ora"
    window.doc.add_layer()
    assert window.files.save_to(str(path))
    qtbot.waitUntil(lambda: bool(gate.threads), timeout=5000)
    window.close()
    assert window.isVisible() and not path.exists()
    gate.event.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20000)
    assert read_ora(path)[2][-1].name.startswith("Layer")


def test_background_save_marks_clean(qtbot, window, tmp_path):
    window.doc.add_layer()
    _save(qtbot, window, str(tmp_path / "bg.ora"))
    assert not window.doc.modified


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()[:2000]


@pytest.mark.parametrize(
    "name,payload",
    [
        ("bad.ora", b"garbage"),
        ("bad.png", b"\x89PNG\r\n\x1a\nnope"),
        ("cut.png", _truncated_png()),
        ("empty.webp", b""),
    ],
)
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
    with qtbot.waitSignal(window.error_shown, timeout=10000) as sig:
        assert window.files.open_path(str(bad))
    assert name in sig.args[1]
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and name in boxes[0].text()
    assert [(la.uid, la.name) for la in doc.layers] == [(u, n) for u, n, _ in state]
    assert all(np.array_equal(la.pixels, p) for la, (_, _, p) in zip(doc.layers, state, strict=True))
    assert doc.undo_stack.index() == index
    assert not window.files.busy and window.file_label.text() == ""
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
    with qtbot.waitSignal(window.files.opened, timeout=10000):
        window.files.offer_recovery()
    assert [la.name for la in window.doc.layers][-1] == "Unsaved work"
    assert window.doc.modified


def test_recent_files_menu(qtbot, window, tmp_path):
    path = tmp_path / "r.png"
    Image.new("RGBA", (12, 12), (1, 2, 3, 255)).save(path)
    _open(qtbot, window, str(path))
    titles = [a.text() for a in window.recent_menu.actions()]
    assert titles[0] == "r.png"
