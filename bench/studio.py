"""NoiseBrush Studio responsiveness: brush dab cost on a 4096x4096 canvas and event-loop stalls while a
generation runs. Targets: a dab (paint + tile invalidation + repaint) under 16 ms, p99 stall under 50 ms.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m noisebrush.bench.studio [--model PATH|default] [--steps N]

Without --model a tiny random stand-in prior (bench/standins.py tiny_ddpm) is built in a temp folder, so the
stall figure measures the app's own overhead (worker thread, previews), not a real prior's speed.

The window loads the bundled prior's vocabulary on a thread at start-up, which takes tens of seconds on
a small machine and competes with the GUI thread for the GIL and the CPU. By default the dabs are
measured at once, as a user painting right after launch would see them; --after-startup waits for that
loading to end first and measures the steady state. Wall figures include waiting for the CPU; the CPU
figures are the GUI thread's own time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PyQt6.QtCore import QEventLoop, QPointF, QSettings, Qt  # noqa: E402
from PyQt6.QtGui import QColor  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from noisebrush.bench.qt import StallProbe  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


STARTUP_THREADS = ("nb-models", "nb-vocabulary")


def _window(app: QApplication, tmp: Path, after_startup: bool = False):  # type: ignore[no-untyped-def]
    from noisebrush.gui.window import MainWindow

    settings = QSettings(str(tmp / "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, recovery_folder=tmp / "rec")
    win.resize(1600, 1000)
    win.show()
    app.processEvents()
    if after_startup:
        t0 = time.monotonic()
        # The vocabulary thread starts once the model list arrives: wait for both, in turn.
        while time.monotonic() - t0 < 600 and (
            time.monotonic() - t0 < 2 or any(t.name in STARTUP_THREADS for t in threading.enumerate())
        ):
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.05)
        print(f"waited {time.monotonic() - t0:.1f} s for the start-up loading to end")
    return win


def bench_dabs(app: QApplication, tmp: Path, size: int = 4096, after_startup: bool = False) -> None:
    from noisebrush.gui.tools import ToolEvent

    win = _window(app, tmp, after_startup)
    doc, canvas = win.doc, win.canvas
    doc.new(size, size)
    doc.add_layer("Paint")
    for zoom_name, setup in (("fit", canvas.fit), ("100%", lambda: canvas.set_scale(1.0))):
        setup()
        t, c = time.perf_counter(), time.thread_time()
        canvas.repaint()
        first, first_cpu = (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000
        t, c = time.perf_counter(), time.thread_time()
        canvas.repaint()
        cached, cached_cpu = (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000
        print(
            f"full repaint at {zoom_name:>4}: first {first:7.1f} ms (CPU {first_cpu:6.1f}), "
            f"cached {cached:6.1f} ms (CPU {cached_cpu:5.1f})"
        )
    canvas.set_scale(1.0)
    canvas.origin = QPointF(-size / 2 + 600, -size / 2 + 400)
    canvas.repaint()
    brush = win.tool_objects["brush"]
    win.tools.set_color(QColor(200, 40, 40))
    for diameter in (30.0, 120.0):
        win.tools.set_size(diameter)
        times: list[float] = []
        cpu: list[float] = []
        cx, cy = size / 2, size / 2
        mods, btn = Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton
        brush.press(ToolEvent(cx, cy, 1.0, btn, mods))
        for i in range(300):
            x = cx + 400 * np.cos(i / 40) - 200
            y = cy + 250 * np.sin(i / 25)
            t, c = time.perf_counter(), time.thread_time()
            brush.move(ToolEvent(x, y, 1.0, btn, mods))
            app.processEvents()  # the real path: the dab's dirty rect is repainted before this returns
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
        t = time.perf_counter()
        brush.release(ToolEvent(x, y, 1.0, btn, mods))
        commit = (time.perf_counter() - t) * 1000
        print(
            f"dab {diameter:5.0f} px on {size}x{size}, paint + repaint: wall median {statistics.median(times):6.2f} ms, "
            f"p99 {pct(times, 99):6.2f} ms; CPU median {statistics.median(cpu):6.2f} ms, p99 {pct(cpu, 99):6.2f} ms "
            f"(target 16 ms); stroke commit {commit:.1f} ms"
        )
    doc.undo_stack.setClean()
    win.close()


def bench_stall(app: QApplication, tmp: Path, model: str, steps: int | None, size: int) -> None:
    win = _window(app, tmp)
    doc = win.doc
    doc.new(size, size)
    layer = doc.add_layer("Sketch")
    layer.pixels[size // 4 : size // 2, size // 4 : size // 2] = (40, 120, 40, 255)
    doc.touched(layer, None)
    s = size // 2
    win.tool_objects["rect"].select([(s // 2, s // 2), (s // 2 + s, s // 2 + s)], "replace")
    ctl = win.sdedit
    ctl.set_options(model=model, steps=steps, seed=1, seed_locked=True, device="cpu")
    outcome: list[str] = []
    ctl.finished.connect(outcome.append)
    steps_seen: list[int] = []
    ctl.progress.connect(lambda step, total, left: steps_seen.append(step))
    probe = StallProbe()
    probe.start()
    t0 = time.perf_counter()
    ctl.generate()
    while not outcome:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    stalls = probe.stop()
    wall = time.perf_counter() - t0
    print(
        f"generation ({outcome[0]}, {len(steps_seen)} progress reports, {wall:.1f} s, model {model}): "
        f"event-loop stall p50 {pct(stalls, 50):5.1f} ms, p99 {pct(stalls, 99):5.1f} ms, max {max(stalls):6.1f} ms "
        f"over {len(stalls)} probes (target p99 50 ms)"
    )
    doc.undo_stack.setClean()
    win.close()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model for the stall probe (default: a tiny stand-in)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--canvas", type=int, default=4096, help="canvas size for the dab benchmark")
    p.add_argument("--gen-size", type=int, default=256, help="canvas size for the generation")
    p.add_argument("--skip-stall", action="store_true")
    p.add_argument(
        "--after-startup", action="store_true", help="measure dabs once the start-up model loading has ended"
    )
    args = p.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    tmp = Path(tempfile.mkdtemp(prefix="nb-gui-bench-"))
    print(f"cpu threads visible: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    model = args.model
    if model is None and not args.skip_stall:
        from noisebrush.bench import standins

        # Before any window: its start-up thread imports the same lazily loaded libraries, and two
        # threads importing them at once can fail.
        model = str(standins.tiny_ddpm(tmp / "tiny", sample_size=32))
    bench_dabs(app, tmp, args.canvas, args.after_startup)
    if not args.skip_stall:
        assert model is not None
        bench_stall(app, tmp, model, args.steps, args.gen_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
