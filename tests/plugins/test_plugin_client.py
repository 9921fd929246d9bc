"""The plugins' urllib client and job runner against a live server (fake engine), and GIMP's logic
with a fake host: one undo group, new layers right above their sources, unselected pixels untouched."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gimp_logic
import numpy as np
import pytest
from nb_live import TOKEN, FakeEngine, live_server
from noisebrush_krita import nb_jobs, nb_png
from noisebrush_krita.nb_client import Client, ServerError, read_token, token_path
from noisebrush_krita.nb_edit import Settings
from noisebrush_krita.nb_jobs import Cancelled, Stop, Target, run_jobs


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with live_server(FakeEngine(steps=6, delay=0.01), preview_interval=0.0) as (u, _app):
        yield u


def rgba(w: int, h: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8).tobytes()


def test_client_routes_and_errors(url: str) -> None:
    c = Client(url, TOKEN)
    assert c.health()["status"] == "ok"
    assert c.models()[0]["name"] == "default"
    with pytest.raises(ServerError, match="401") as e:
        Client(url, "wrong").models()
    assert e.value.status == 401
    with pytest.raises(ServerError, match="422.*guide"):
        c.submit({"kind": "sdedit"})
    with pytest.raises(ServerError, match="cannot reach"):
        Client("http://127.0.0.1:9", TOKEN, timeout=2).health()


def test_errors_say_which_of_url_token_or_server_is_wrong(url: str) -> None:
    """A painter pasting settings sees which one to fix, and where the token comes from."""
    with pytest.raises(ServerError, match=r"server URL '127\.0\.0\.1:7865' is not valid: use one like http"):
        Client("127.0.0.1:7865", TOKEN).models()
    with pytest.raises(ServerError, match=r"token is wrong.*noisebrush token --print"):
        Client(url, "wrong").models()
    with pytest.raises(ServerError, match=r"cannot reach .*is `noisebrush serve` running there"):
        Client("http://127.0.0.1:9", TOKEN, timeout=2).models()


def test_token_file_rule_matches_the_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from noisebrush.core.server import auth

    monkeypatch.setenv("NOISEBRUSH_TOKEN_FILE", str(tmp_path / "t"))
    assert token_path() == str(auth.token_path())
    monkeypatch.delenv("NOISEBRUSH_TOKEN_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert token_path() == str(auth.token_path())
    made = auth.ensure_token()
    assert read_token() == made


def test_run_jobs_streams_progress_and_previews(url: str) -> None:
    w, h = 20, 16
    src = rgba(w, h)
    mask = bytearray(w * h)
    for y in range(4, 10):
        mask[y * w + 5 : y * w + 15] = b"\xff" * 10
    targets = [
        Target("n1", "Layer", (3, 2, w, h), src, bytes(mask)),
        Target("n2", "Other", (0, 0, w, h), src, None),
    ]
    steps, previews = [], []
    out = run_jobs(
        Client(url, TOKEN),
        Settings(variations=2),
        targets,
        lambda i, s, t: steps.append((i, s, t)),
        lambda i, box, px: previews.append((i, box, len(px))),
    )
    assert [len(r) for r in out] == [2, 2]
    a, s = np.frombuffer(out[0][0], np.uint8).reshape(h, w, 4), np.frombuffer(src, np.uint8).reshape(h, w, 4)
    sel = np.frombuffer(bytes(mask), np.uint8).reshape(h, w) > 0
    assert np.array_equal(a[~sel], s[~sel]) and np.array_equal(a[sel][:, :3], 255 - s[sel][:, :3])
    assert np.array_equal(np.frombuffer(out[1][0], np.uint8).reshape(h, w, 4)[..., :3], 255 - s[..., :3])
    assert (0, 6, 6) in steps and (1, 6, 6) in steps
    assert previews and previews[0][1] == (3, 2, w, h) and previews[0][2] == w * h * 4


def test_run_jobs_cancel_and_failure() -> None:
    with live_server(FakeEngine(steps=500, delay=0.01)) as (u, _app):
        stop = Stop()
        t = Target("n", "L", (0, 0, 8, 8), rgba(8, 8), None)
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        with pytest.raises(Cancelled):
            run_jobs(Client(u, TOKEN), Settings(), [t, t], cancel=stop)
        deadline = time.monotonic() + 5  # the second job may be stopping at its next step
        while not all(j.done for j in _app.state.queue.jobs()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [(j.kind, j.status) for j in _app.state.queue.jobs()] == [("batch", "cancelled")]
    with live_server(FakeEngine()) as (u, _app):
        with pytest.raises(ServerError, match="L: RuntimeError: fake engine exploded"):
            run_jobs(Client(u, TOKEN), Settings(prompt="explode"), [t])
        bad = bytearray(rgba(8, 8))
        bad[:3] = b"\x01\x02\x03"  # the fake engine fails this frame alone
        with pytest.raises(ServerError, match="^Bad: RuntimeError: fake engine exploded"):
            run_jobs(Client(u, TOKEN), Settings(), [t, Target("n", "Bad", (0, 0, 8, 8), bytes(bad), None)])


def test_selected_layers_go_as_one_batch_job_and_come_back_in_order(url: str) -> None:
    """Two layers sharing a size and selection are one batch job with every frame on the seed (as a job per
    layer had); layers of another size or selection go in a batch of their own; each variation is one."""
    w, h = 16, 12
    layers = [rgba(w, h, seed=k) for k in range(3)] + [rgba(w + 2, h, seed=3)]
    targets = [Target(f"n{k}", f"L{k}", (0, 0, w + (k == 3) * 2, h), px, None) for k, px in enumerate(layers)]
    runs = nb_jobs._runs(Settings(seed=9, variations=2), targets)
    assert [(m, b["kind"], b["seed"], b["shared_noise"]) for m, b in runs] == [
        ([0, 1, 2], "batch", 9, True),
        ([3], "batch", 9, True),
        ([0, 1, 2], "batch", 10, True),
        ([3], "batch", 10, True),
    ]
    assert runs[0][1]["names"] == ["L0", "L1", "L2"] and "variations" not in runs[0][1]
    out = run_jobs(Client(url, TOKEN), Settings(variations=2), targets)
    for px, t, images in zip(layers, targets, out, strict=True):
        want = np.frombuffer(px, np.uint8).reshape(t.box[3], t.box[2], 4)
        assert len(images) == 2
        for img in images:
            got = np.frombuffer(img, np.uint8).reshape(want.shape)
            assert np.array_equal(got[..., :3], 255 - want[..., :3]) and np.array_equal(
                got[..., 3], want[..., 3]
            )


class FakeGimp:
    """Records host calls; layers are dicts with pixels in a bytearray."""

    def __init__(self, w: int, h: int, sel: tuple[int, int, int, int] | None) -> None:
        self.w, self.h, self.sel = w, h, sel
        self.stack: list[dict[str, Any]] = []  # top first, like GIMP
        self.calls: list[str] = []

    def layer(self, name: str, seed: int) -> dict[str, Any]:
        d = {"name": name, "px": bytearray(rgba(self.w, self.h, seed)), "offsets": (0, 0)}
        self.stack.insert(0, d)
        return d

    def layer_bounds(self, d: dict[str, Any]) -> tuple[int, int, int, int]:
        return (*d["offsets"], self.w, self.h)

    def layer_name(self, d: dict[str, Any]) -> str:
        return d["name"]

    def selection_bounds(self, image: Any) -> tuple[int, int, int, int] | None:
        return self.sel

    def selection_mask(self, image: Any, box: tuple[int, int, int, int]) -> bytes:
        x, y, w, h = box
        sx, sy, sw, sh = self.sel or (0, 0, 0, 0)
        return bytes(
            255 if sx <= x + i < sx + sw and sy <= y + j < sy + sh else 0 for j in range(h) for i in range(w)
        )

    def read_rgba(self, d: dict[str, Any], box: tuple[int, int, int, int]) -> bytes:
        x, y, w, h = box
        return b"".join(
            bytes(d["px"][((y + j) * self.w + x) * 4 : ((y + j) * self.w + x + w) * 4]) for j in range(h)
        )

    def write_rgba(self, d: dict[str, Any], box: tuple[int, int, int, int], px: bytes) -> None:
        self.calls.append(f"write {d['name']}")
        x, y, w, h = box
        for j in range(h):
            d["px"][((y + j) * self.w + x) * 4 : ((y + j) * self.w + x + w) * 4] = px[
                j * w * 4 : (j + 1) * w * 4
            ]

    def add_layer_above(self, image: Any, source: dict[str, Any], name: str) -> dict[str, Any]:
        self.calls.append(f"add {name}")
        d = {"name": name, "px": bytearray(source["px"]), "offsets": source["offsets"]}
        self.stack.insert(self.stack.index(source), d)
        return d

    def set_name(self, d: dict[str, Any], name: str) -> None:
        self.calls.append(f"name {d['name']} -> {name}")
        d["name"] = name

    def remove_layer(self, image: Any, d: dict[str, Any]) -> None:
        self.calls.append(f"remove {d['name']}")
        self.stack.remove(d)

    def undo_group_start(self, image: Any) -> None:
        self.calls.append("undo start")

    def undo_group_end(self, image: Any) -> None:
        self.calls.append("undo end")

    def progress(self, fraction: float, text: str = "") -> None:
        assert 0.0 <= fraction <= 1.0

    def flush(self) -> None:
        self.calls.append("flush")


def test_gimp_logic_one_undo_group_layers_above_sources(url: str) -> None:
    host = FakeGimp(120, 90, (70, 10, 30, 20))
    sources = [host.layer(f"Layer {i}", i) for i in (1, 2)]
    before = [bytes(s["px"]) for s in sources]
    made = gimp_logic.run(host, None, sources, Settings(context=16), Client(url, TOKEN))
    assert [d["name"] for d in host.stack] == ["Layer 2 (SDEdit)", "Layer 2", "Layer 1 (SDEdit)", "Layer 1"]
    assert host.calls[0] == "undo start" and host.calls[-2:] == ["undo end", "flush"]
    assert host.calls.count("undo start") == 1 and host.calls.count("undo end") == 1
    for src, old, new in zip(sources, before, made, strict=True):
        assert bytes(src["px"]) == old  # the source is untouched
        a = np.frombuffer(bytes(new["px"]), np.uint8).reshape(90, 120, 4)
        o = np.frombuffer(old, np.uint8).reshape(90, 120, 4)
        inside = np.zeros((90, 120), bool)
        inside[10:30, 70:100] = True
        assert np.array_equal(a[~inside], o[~inside])
        assert np.array_equal(a[inside][:, :3], 255 - o[inside][:, :3])


def test_gimp_logic_ends_undo_group_when_writing_fails(url: str) -> None:
    host = FakeGimp(16, 16, None)
    src = host.layer("L", 0)

    def boom(*a: Any) -> None:
        raise RuntimeError("disk full")

    host.write_rgba = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        gimp_logic.run(host, None, [src], Settings(), Client(url, TOKEN))
    assert host.calls.count("undo start") == host.calls.count("undo end") == 1


def test_png_sizes_checked(url: str) -> None:
    assert nb_png.decode(nb_png.encode(3, 2, 4, bytes(24)))[:3] == (3, 2, 4)


@pytest.mark.slow
def test_start_local_server_runs_noisebrush_serve(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from nb_live import free_port
    from noisebrush_krita.nb_client import start_local_server

    exe = shutil.which("noisebrush") or str(Path(sys.executable).parent / "noisebrush")
    monkeypatch.setenv("NOISEBRUSH_TOKEN_FILE", str(tmp_path / "token"))
    url = f"http://127.0.0.1:{free_port()}"
    proc = start_local_server(url, exe, timeout=120)
    assert proc is not None
    try:
        c = Client(url, read_token())
        assert c.health()["status"] == "ok" and isinstance(c.models(), list)
        assert start_local_server(url, exe) is None  # already up: not started twice
    finally:
        proc.terminate()
        proc.wait(20)


def test_gimp_logic_offset_layer_maps_the_selection(url: str) -> None:
    host = FakeGimp(60, 40, (30, 20, 10, 10))  # selection in image pixels
    src = host.layer("Moved", 3)
    src["offsets"] = (10, 5)  # the layer starts at (10, 5) in the image
    old = np.frombuffer(bytes(src["px"]), np.uint8).reshape(40, 60, 4)
    (made,) = gimp_logic.run(host, None, [src], Settings(context=4), Client(url, TOKEN))
    new = np.frombuffer(bytes(made["px"]), np.uint8).reshape(40, 60, 4)
    inside = np.zeros((40, 60), bool)
    inside[15:25, 20:30] = True  # the selection in the layer's own pixels
    assert np.array_equal(new[~inside], old[~inside])
    assert np.array_equal(new[inside][:, :3], 255 - old[inside][:, :3])


def test_gimp_progress_text_says_where_the_run_is_and_the_time_left() -> None:
    # GIMP shows a plug-in's progress text but no preview: the painter sees the step and the time left.
    assert gimp_logic.progress_text(0, 2, 0, 8, 0.0, 0.0) == "NoiseBrush: layer 1 of 2, step 0/8"
    half = gimp_logic.progress_text(0, 2, 8, 8, 0.5, 12.0)
    assert half == "NoiseBrush: layer 1 of 2, step 8/8, about 12 s left"
    slow = gimp_logic.progress_text(0, 1, 1, 8, 0.125, 60.0)
    assert slow.endswith("about 7 min left")


def test_gimp_previews_go_into_a_layer_that_becomes_the_result(url: str) -> None:
    """Previews are drawn into a "NoiseBrush preview" layer inside the run's one undo group; at the end
    it is the result (renamed), so no preview layer is left and the group is the only undo step."""
    host = FakeGimp(24, 20, (4, 4, 8, 8))
    src = host.layer("L", 0)
    before = bytes(src["px"])
    with live_server(FakeEngine(steps=4, delay=0.02), preview_interval=0.0) as (u, _app):
        (made,) = gimp_logic.run(host, None, [src], Settings(), Client(u, TOKEN))
    assert host.calls[:2] == ["undo start", f"add {gimp_logic.PREVIEW_NAME}"]
    assert host.calls.count(f"write {gimp_logic.PREVIEW_NAME}") >= 2  # previews, then the result
    assert f"name {gimp_logic.PREVIEW_NAME} -> L (SDEdit)" in host.calls
    assert host.calls[-2:] == ["undo end", "flush"] and host.calls.count("undo start") == 1
    assert [d["name"] for d in host.stack] == ["L (SDEdit)", "L"] and made is host.stack[0]
    assert bytes(src["px"]) == before


def test_gimp_cancelled_run_takes_its_preview_layer_away(url: str) -> None:
    host = FakeGimp(24, 20, None)
    src = host.layer("L", 0)
    stop = Stop()
    write = host.write_rgba

    def write_then_cancel(d: dict[str, Any], box: Any, px: bytes) -> None:
        write(d, box, px)
        stop.set()  # the painter cancels once the first preview shows

    host.write_rgba = write_then_cancel  # type: ignore[method-assign]
    with live_server(FakeEngine(steps=6, delay=0.05), preview_interval=0.0) as (u, _app):
        with pytest.raises(gimp_logic.Cancelled):  # the GIMP copy's class, not the Krita copy's
            gimp_logic.run(host, None, [src], Settings(), Client(u, TOKEN), stop)
    assert f"add {gimp_logic.PREVIEW_NAME}" in host.calls
    assert [d["name"] for d in host.stack] == ["L"]
    assert host.calls.count("undo start") == host.calls.count("undo end") == 1


def test_gimp_preview_layer_is_off_by_default_so_a_cancel_leaves_the_image_as_it_was() -> None:
    """GIMP SIGKILLs a plug-in on Cancel, so a preview layer cannot be cleaned up after one: off unless asked."""
    for kind in ("sdedit", "ledits"):
        (arg,) = [a for a in gimp_logic.ARGS[kind] if a.name == "previews"]
        assert arg.default is False
        assert gimp_logic.settings_from(gimp_logic.read_args(lambda _n: None, kind), kind).previews is False
