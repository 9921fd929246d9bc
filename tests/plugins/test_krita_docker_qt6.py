"""The Krita docker on PyQt6 (as in Krita 6), with a stand-in `krita` module and document:
Generate runs the QThread worker against a live server, shows previews, then adds the layer above; SDEdit
Every Keyframe sends an animated layer's keyframes as one batch on the same worker and writes a copy."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="PyQt6 is not installed")
from nb_live import TOKEN, FakeEngine, live_server  # noqa: E402
from PyQt6.QtWidgets import QDockWidget  # noqa: E402

W, H = 40, 30


class Node:
    def __init__(self, doc: Doc, name: str, px: bytes | None = None) -> None:
        self.doc, self._name, self.parent = doc, name, None
        self.px = bytearray(px if px is not None else bytes(W * H * 4))  # stored BGRA, like Krita
        self.children: list[Node] = []

    def name(self) -> str:
        return self._name

    def setName(self, n: str) -> None:  # noqa: N802
        self._name = n

    def type(self) -> str:
        return "paintlayer"

    def colorModel(self) -> str:  # noqa: N802
        return "RGBA"

    def colorDepth(self) -> str:  # noqa: N802
        return "U8"

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:  # noqa: N802
        return b"".join(bytes(self.px[((y + j) * W + x) * 4 : ((y + j) * W + x + w) * 4]) for j in range(h))

    def setPixelData(self, data: Any, x: int, y: int, w: int, h: int) -> None:  # noqa: N802
        data = bytes(data)
        for j in range(h):
            self.px[((y + j) * W + x) * 4 : ((y + j) * W + x + w) * 4] = data[j * w * 4 : (j + 1) * w * 4]

    def duplicate(self) -> Node:
        return Node(self.doc, self._name, bytes(self.px))

    def parentNode(self) -> Node | None:  # noqa: N802
        return self.parent

    def addChildNode(self, node: Node, above: Node | None) -> None:  # noqa: N802
        node.parent = self
        self.children.insert(self.children.index(above) + 1 if above else len(self.children), node)

    def childNodes(self) -> list[Node]:  # noqa: N802
        return list(self.children)

    def remove(self) -> None:
        self.parent.children.remove(self)
        self.parent = None

    def uniqueId(self) -> Any:  # noqa: N802
        return types.SimpleNamespace(toString=lambda: str(id(self)))

    def animated(self) -> bool:
        return False

    def hasKeyframeAtTime(self, t: int) -> bool:  # noqa: N802
        return False


class AnimatedNode(Node):
    """A paint layer with keyframes (time -> BGRA). As in Krita 5.1.5, reads and writes go to the keyframe
    shown at the document's current time, pixelDataAtTime answers only at a keyframe, and a duplicate keeps
    the keyframes."""

    def __init__(self, doc: Doc, name: str, frames: dict[int, bytes]) -> None:
        super().__init__(doc, name)
        self.frames = {t: bytearray(px) for t, px in frames.items()}

    @property  # type: ignore[override]
    def px(self) -> bytearray:
        shown = [t for t in self.frames if t <= self.doc.time] or [min(self.frames)]
        return self.frames[max(shown)]

    @px.setter
    def px(self, value: bytearray) -> None:  # Node.__init__'s blank image: a keyframed layer has none
        pass

    def animated(self) -> bool:
        return True

    def hasKeyframeAtTime(self, t: int) -> bool:  # noqa: N802
        return t in self.frames

    def pixelDataAtTime(self, x: int, y: int, w: int, h: int, t: int) -> bytes:  # noqa: N802
        if t not in self.frames:
            return b""
        now, self.doc.time = self.doc.time, t
        try:
            return self.pixelData(x, y, w, h)
        finally:
            self.doc.time = now

    def duplicate(self) -> Node:
        return AnimatedNode(self.doc, self._name, {t: bytes(px) for t, px in self.frames.items()})


class Selection:
    def __init__(self, box: tuple[int, int, int, int]) -> None:
        self.box = box

    def x(self) -> int:
        return self.box[0]

    def y(self) -> int:
        return self.box[1]

    def width(self) -> int:
        return self.box[2]

    def height(self) -> int:
        return self.box[3]

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:  # noqa: N802
        sx, sy, sw, sh = self.box
        return bytes(
            255 if sx <= x + i < sx + sw and sy <= y + j < sy + sh else 0 for j in range(h) for i in range(w)
        )


class Doc:
    def __init__(self) -> None:
        self.root = Node(self, "root")
        self.sel = Selection((10, 8, 12, 10))
        self.active: Node | None = None
        self.time, self.clip = 0, (0, 10)

    def activeNode(self) -> Node | None:  # noqa: N802
        return self.active

    def currentTime(self) -> int:  # noqa: N802
        return self.time

    def setCurrentTime(self, t: int) -> None:  # noqa: N802
        self.time = t

    def fullClipRangeStartTime(self) -> int:  # noqa: N802
        return self.clip[0]

    def fullClipRangeEndTime(self) -> int:  # noqa: N802
        return self.clip[1]

    def width(self) -> int:
        return W

    def height(self) -> int:
        return H

    def selection(self) -> Selection:
        return self.sel

    def rootNode(self) -> Node:  # noqa: N802
        return self.root

    def createNode(self, name: str, kind: str) -> Node:  # noqa: N802
        return Node(self, name)

    def nodeByName(self, name: str) -> Node | None:  # noqa: N802
        return next((n for n in self.root.children if n.name() == name), None)

    def refreshProjection(self) -> None:  # noqa: N802
        pass

    def waitForDone(self) -> None:  # noqa: N802
        pass


@pytest.fixture()
def docker_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    settings: dict[tuple[str, str], str] = {}
    app = types.SimpleNamespace(
        readSetting=lambda g, k, d: settings.get((g, k), d),
        writeSetting=lambda g, k, v: settings.__setitem__((g, k), v),
        activeDocument=lambda: None,
        activeWindow=lambda: None,
        action=lambda name: None,  # no window, no actions: as in kritarunner
    )
    fake = types.ModuleType("krita")
    fake.DockWidget = type("DockWidget", (QDockWidget,), {})  # type: ignore[attr-defined]
    fake.Krita = types.SimpleNamespace(instance=lambda: app)  # type: ignore[attr-defined]
    fake.Extension = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "krita", fake)
    for name in (
        "noisebrush_krita.qtcompat",
        "noisebrush_krita.krita_host",
        "noisebrush_krita.worker",
        "noisebrush_krita.generate",
        "noisebrush_krita.docker",
    ):
        sys.modules.pop(name, None)
    mod = importlib.import_module("noisebrush_krita.docker")
    yield mod
    for name in (
        "noisebrush_krita.qtcompat",
        "noisebrush_krita.krita_host",
        "noisebrush_krita.worker",
        "noisebrush_krita.generate",
        "noisebrush_krita.docker",
    ):
        sys.modules.pop(name, None)


def _one_layer_document(host: Any, monkeypatch: pytest.MonkeyPatch, pixels: bytes) -> Doc:
    """A document holding one selected paint layer "Paint", made the active one."""
    doc = Doc()
    layer = Node(doc, "Paint", pixels)
    doc.root.addChildNode(layer, None)
    monkeypatch.setattr(host, "active_document", lambda: doc)
    monkeypatch.setattr(host, "selected_nodes", lambda d: [layer])
    return doc


def test_docker_on_pyqt6_generates_with_previews(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noisebrush_krita import qtcompat

    assert qtcompat.QT6
    host = docker_module.host
    src = np.random.default_rng(0).integers(0, 256, (H, W, 4), dtype=np.uint8)
    doc = _one_layer_document(host, monkeypatch, src.tobytes())
    previews: list[tuple[int, int, int, int]] = []
    show = host.show_preview
    monkeypatch.setattr(
        host, "show_preview", lambda d, s, box, px: (previews.append(box), show(d, s, box, px))
    )

    with live_server(FakeEngine(steps=6, delay=0.03), preview_interval=0.0) as (url, _app):
        docker = docker_module.NoiseBrushDocker()
        qtbot.addWidget(docker)
        docker.set_kind("ledits")
        assert docker.concepts.isEnabled() and not docker.strength.isEnabled()
        docker.set_kind("sdedit")
        docker.url.setText(url)
        docker.token.setText(TOKEN)
        docker.generate_btn.click()
        assert docker.cancel_btn.isEnabled()
        qtbot.waitUntil(lambda: docker._worker is None, timeout=20000)
        qtbot.waitUntil(lambda: docker._thread is None, timeout=5000)
    assert docker.status.text() == "Added 1 layer(s).", docker.status.text()
    assert [n.name() for n in doc.root.children] == ["Paint", "Paint (SDEdit)"]
    assert previews, "no preview reached the preview layer"
    out = np.frombuffer(bytes(doc.root.children[1].px), np.uint8).reshape(H, W, 4)
    inside = np.zeros((H, W), bool)
    inside[8:18, 10:22] = True
    assert np.array_equal(out[~inside], src[~inside])
    assert np.array_equal(out[inside][:, :3], 255 - src[inside][:, :3])


def test_docker_cancel_writes_nothing_and_removes_preview(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = docker_module.host
    doc = _one_layer_document(host, monkeypatch, bytes(W * H * 4))
    with live_server(FakeEngine(steps=400, delay=0.02), preview_interval=0.0) as (url, _app):
        docker = docker_module.NoiseBrushDocker()
        qtbot.addWidget(docker)
        docker.url.setText(url)
        docker.token.setText(TOKEN)
        docker.generate_btn.click()
        # the result-to-be layer is there from the click; its first preview arrives with step 1
        assert doc.nodeByName(host.PREVIEW_NAME) is not None
        qtbot.waitUntil(lambda: docker.bar.value() > docker.bar.minimum(), timeout=10000)
        docker.cancel_btn.click()
        qtbot.waitUntil(lambda: docker._worker is None, timeout=10000)
        qtbot.waitUntil(lambda: docker._thread is None, timeout=5000)
    assert docker.status.text().startswith("Cancelled")
    assert [n.name() for n in doc.root.children] == ["Paint"]


def test_docker_cancel_reaches_the_server_at_once_and_resets_the_bar(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel is sent when clicked, not with the job's next event (2 s away here), and the bar empties."""
    from test_plugin_cancel import STEP_S, record_cancels

    host = docker_module.host
    doc = _one_layer_document(host, monkeypatch, bytes(W * H * 4))
    with live_server(FakeEngine(steps=3, delay=STEP_S), preview_interval=0.0) as (url, app):
        cancels = record_cancels(app)
        docker = docker_module.NoiseBrushDocker()
        qtbot.addWidget(docker)
        docker.url.setText(url)
        docker.token.setText(TOKEN)
        docker.generate_btn.click()
        # step 1's progress and preview are in: nothing more comes from the server until step 2
        qtbot.waitUntil(lambda: docker.bar.value() > docker.bar.minimum(), timeout=20000)
        docker.cancel_btn.click()
        assert docker.bar.value() == docker.bar.minimum() - 1  # reset: an empty bar, no stale percentage
        assert docker.status.text() == "Cancelling..." and not docker.cancel_btn.isEnabled()
        qtbot.waitUntil(lambda: len(cancels) == 1, timeout=20000)
        qtbot.waitUntil(lambda: docker._worker is None, timeout=20000)
        qtbot.waitUntil(lambda: docker._thread is None, timeout=5000)
        (job,) = app.state.queue.jobs()
    assert cancels[0] == (job.id, 1), "cancel reached the server only after the next step"
    assert docker.status.text().startswith("Cancelled")
    assert docker.bar.value() == docker.bar.minimum() - 1
    assert [n.name() for n in doc.root.children] == ["Paint"]


def test_live_follows_the_layer_cancels_stale_runs_and_applies_one_layer(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live on: a run at once; a stroke during a run cancels it and only the newer result shows; Apply
    keeps the preview layer as the result; the history holds every shown result, newest first."""
    host = docker_module.host
    src = np.random.default_rng(1).integers(0, 256, (H, W, 4), dtype=np.uint8)
    doc = _one_layer_document(host, monkeypatch, src.tobytes())
    paint = doc.root.children[0]
    with live_server(FakeEngine(steps=4, delay=0.15), preview_interval=0.0) as (url, app):
        docker = docker_module.NoiseBrushDocker()
        qtbot.addWidget(docker)
        docker.url.setText(url)
        docker.token.setText(TOKEN)
        docker.live.setChecked(True)
        qtbot.waitUntil(lambda: len(app.state.queue.jobs()) == 1, timeout=10000)
        paint.px[(10 * W + 12) * 4 : (10 * W + 14) * 4] = bytes(8)  # a stroke while the first run goes
        qtbot.waitUntil(lambda: docker.live_results >= 1, timeout=20000)
        jobs = app.state.queue.jobs()
        assert len(jobs) == 2 and jobs[0].status == "cancelled", [j.status for j in jobs]
        assert docker.live_results == 1  # the stale run's result never showed
        assert [n.name() for n in doc.root.children] == ["Paint", host.PREVIEW_NAME]
        shown = np.frombuffer(bytes(doc.root.children[1].px), np.uint8).reshape(H, W, 4)
        now = np.frombuffer(bytes(paint.px), np.uint8).reshape(H, W, 4)
        assert np.array_equal(shown[9, 11, :3], 255 - now[9, 11, :3])  # inverted from the newer pixels
        docker.apply_btn.click()
        assert [n.name() for n in doc.root.children] == ["Paint", "Paint (SDEdit)"]
        assert docker.history.count() == 1 and "seed 0" in docker.history.item(0).text()
        docker.live.setChecked(False)
    assert [n.name() for n in doc.root.children] == ["Paint", "Paint (SDEdit)"]


def test_history_is_bounded(docker_module: types.ModuleType) -> None:
    from noisebrush_krita.live import Entry, History

    h = History(3)
    for seed in range(5):
        h.add(
            Entry({"kind": "sdedit", "seed": seed, "strength": 0.5}, None, "L", (0, 0, 1, 1), bytes(4), True)
        )
    assert [e.settings["seed"] for e in h.entries] == [4, 3, 2]


def test_history_rerun_runs_the_picked_result_again_with_a_new_seed_on_its_layer_as_it_is_now(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-run takes the picked entry's settings (the docker shows them), a seed it never had, and its
    source layer's current pixels, even when another layer is selected now."""
    host = docker_module.host
    src = np.random.default_rng(2).integers(0, 256, (H, W, 4), dtype=np.uint8)
    doc = _one_layer_document(host, monkeypatch, src.tobytes())
    paint = doc.root.children[0]
    other = Node(doc, "Other")
    doc.root.addChildNode(other, paint)
    seen: list[Any] = []

    class Recording(FakeEngine):
        def sdedit(self, req: Any, callback: Any = None, should_stop: Any = None) -> list[np.ndarray]:
            seen.append(req)
            return super().sdedit(req, callback, should_stop)

    with live_server(Recording(steps=2, delay=0.01), preview_interval=0.0) as (url, app):
        docker = docker_module.NoiseBrushDocker()
        qtbot.addWidget(docker)
        docker.url.setText(url)
        docker.token.setText(TOKEN)
        docker.strength.setValue(0.35)
        docker.seed.setValue(7)
        docker.generate_btn.click()
        qtbot.waitUntil(lambda: docker._worker is None and docker._thread is None, timeout=20000)
        assert not docker.rerun_btn.isEnabled()  # nothing picked yet
        monkeypatch.setattr(host, "selected_nodes", lambda d: [other])  # the painter moved on
        docker.strength.setValue(0.8)
        paint.px[(9 * W + 11) * 4 : (9 * W + 13) * 4] = bytes(8)  # and painted on the source since
        docker.history.setCurrentRow(0)
        docker._history_clicked(docker.history.item(0))
        assert docker.rerun_btn.isEnabled()
        docker.rerun_btn.click()
        qtbot.waitUntil(lambda: docker._worker is None and docker._thread is None, timeout=20000)
    first, again = seen
    assert docker.strength.value() == pytest.approx(0.35) and docker.seed.value() != 7
    assert again.seed == docker.seed.value() != first.seed == 7
    assert again.strength == pytest.approx(0.35)
    names = [n.name() for n in doc.root.children]
    assert names == ["Paint", "Paint (SDEdit)", "Paint (SDEdit)", "Other"], names
    made = np.frombuffer(bytes(doc.root.children[1].px), np.uint8).reshape(H, W, 4)
    now = np.frombuffer(bytes(paint.px), np.uint8).reshape(H, W, 4)
    assert np.array_equal(made[9, 11, :3], 255 - now[9, 11, :3])  # made from the source as it is now


KEYS = (0, 4, 8)


def _animated_document(host: Any, monkeypatch: pytest.MonkeyPatch, keys: tuple[int, ...] = KEYS) -> Doc:
    """A document whose active layer "Walk" has a keyframe of random pixels at each time of `keys`, at
    time 2 (between keyframes); status messages are kept in doc.messages."""
    doc = Doc()
    rng = np.random.default_rng(3)
    walk = AnimatedNode(
        doc, "Walk", {t: rng.integers(0, 256, W * H * 4, dtype=np.uint8).tobytes() for t in keys}
    )
    doc.root.addChildNode(walk, None)
    doc.active, doc.time = walk, 2
    doc.messages = []  # type: ignore[attr-defined]
    monkeypatch.setattr(host, "active_document", lambda: doc)
    monkeypatch.setattr(host, "status_message", doc.messages.append)  # type: ignore[attr-defined]
    return doc


def _docker_on(docker_module: types.ModuleType, qtbot: Any, url: str) -> Any:
    docker = docker_module.NoiseBrushDocker()
    qtbot.addWidget(docker)
    docker.url.setText(url)
    docker.token.setText(TOKEN)
    return docker


def test_every_keyframe_goes_as_one_batch_into_a_copy_of_the_layer(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_frames (Filter > NoiseBrush > SDEdit Every Keyframe) returns at once; the batch runs on the
    worker thread with "frame k of N" progress; each keyframe's result lands at its time in a copy of the
    layer right above it; the source, the pixels outside the selection and the current time stay."""
    host = docker_module.host
    doc = _animated_document(host, monkeypatch)
    walk = doc.root.children[0]
    sources = {t: bytes(px) for t, px in walk.frames.items()}
    with live_server(FakeEngine(steps=3, delay=0.05), preview_interval=0.0) as (url, app):
        docker = _docker_on(docker_module, qtbot, url)
        docker.set_kind("ledits")  # the action is SDEdit whatever the docker showed
        docker.run_frames()
        assert docker._worker is not None and docker.cancel_btn.isEnabled()  # not done on the GUI thread
        assert [n.name() for n in doc.root.children] == ["Walk"]  # nothing is written before the results
        qtbot.waitUntil(lambda: docker._worker is None and docker._thread is None, timeout=20000)
        jobs = app.state.queue.jobs()
    assert [j.kind for j in jobs] == ["batch"]
    assert docker.status.text() == "Wrote 3 keyframe(s) into 'Walk (SDEdit)'.", docker.status.text()
    for k in (1, 2, 3):
        assert f"NoiseBrush SDEdit: frame {k} of 3, step 3/3..." in doc.messages  # type: ignore[attr-defined]
    assert not [m for m in doc.messages if "step 0/0" in m]  # type: ignore[attr-defined]
    assert [n.name() for n in doc.root.children] == ["Walk", "Walk (SDEdit)"]
    out = doc.root.children[1]
    assert sorted(out.frames) == list(KEYS) and doc.time == 2
    inside = np.zeros((H, W), bool)
    inside[8:18, 10:22] = True
    for t in KEYS:
        assert bytes(walk.frames[t]) == sources[t], f"frame {t} of the source changed"
        src = np.frombuffer(sources[t], np.uint8).reshape(H, W, 4)
        got = np.frombuffer(bytes(out.frames[t]), np.uint8).reshape(H, W, 4)
        assert np.array_equal(got[~inside], src[~inside]), f"frame {t}: pixels outside the selection changed"
        assert np.array_equal(got[inside][:, :3], 255 - src[inside][:, :3]), f"frame {t}: not its own result"


def test_cancelling_every_keyframe_writes_nothing(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_plugin_cancel import STEP_S, record_cancels

    host = docker_module.host
    doc = _animated_document(host, monkeypatch)
    with live_server(FakeEngine(steps=3, delay=STEP_S), preview_interval=0.0) as (url, app):
        cancels = record_cancels(app)
        docker = _docker_on(docker_module, qtbot, url)
        docker.run_frames()
        qtbot.waitUntil(lambda: docker.bar.value() > docker.bar.minimum(), timeout=20000)
        docker.cancel_btn.click()
        assert docker.status.text() == "Cancelling..." and not docker.cancel_btn.isEnabled()
        qtbot.waitUntil(lambda: len(cancels) >= 1, timeout=20000)
        qtbot.waitUntil(lambda: docker._worker is None and docker._thread is None, timeout=20000)
        (job,) = app.state.queue.jobs()
    assert cancels[0] == (job.id, 1), "cancel reached the server only after the next step"
    assert docker.status.text().startswith("Cancelled")
    assert [n.name() for n in doc.root.children] == ["Walk"] and doc.time == 2


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("still", "layer 'Paint' has no keyframes: animate it in the Timeline first"),
        (
            "outside",
            "layer 'Walk' has no keyframes in the clip range 0-10: move them into it or widen it in the Timeline",
        ),
    ],
)
def test_every_keyframe_on_a_layer_without_keyframes_says_so(
    qtbot: Any, docker_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, layer: str, message: str
) -> None:
    host = docker_module.host
    if layer == "still":
        doc = _one_layer_document(host, monkeypatch, bytes(W * H * 4))
        doc.active = doc.root.children[0]
    else:
        doc = _animated_document(host, monkeypatch, keys=(12, 20))
    with live_server(FakeEngine(steps=1), preview_interval=0.0) as (url, app):
        docker = _docker_on(docker_module, qtbot, url)
        docker.run_frames()
        assert docker._worker is None and app.state.queue.jobs() == []
    assert docker.status.text() == message
    assert len(doc.root.children) == 1
