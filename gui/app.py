"""NoiseBrush Studio's window and its scripted smoke session; `noisebrush studio` (gui/command.py) starts it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PyQt6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QApplication

SMOKE_TIMEOUT_S = 1200


def _application() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("NoiseBrush")
    app.setApplicationName("Studio")
    app.setApplicationDisplayName("NoiseBrush Studio")
    return app


def run(args: argparse.Namespace) -> int:
    """Run the app with the options `noisebrush studio` parsed (gui/command.py); returns the exit status."""
    if args.smoke:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _application()
    from .window import MainWindow

    if args.smoke:
        return smoke(app, Path(args.smoke), args.file, args.model, args.steps)
    win = MainWindow()
    win.show()
    if args.file:
        win.files.open_path(args.file)
    else:
        QTimer.singleShot(0, win.files.offer_recovery)
    return int(app.exec())


def _wait(app: QApplication, done: object, timeout_s: float) -> bool:
    loop_end = time.monotonic() + timeout_s
    while not done() and time.monotonic() < loop_end:  # type: ignore[operator]
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    return bool(done())  # type: ignore[operator]


def smoke(
    app: QApplication, out: Path, file: str | None = None, model: str = "default", steps: int | None = None
) -> int:
    """New document, paint strokes, select a region, SDEdit it with the bundled prior, screenshot."""
    from .tools import ToolEvent
    from .window import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="noisebrush-smoke-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, recovery_folder=tmp / "recovery")
    win.error_shown.connect(lambda title, text: print(f"noisebrush smoke: {title}: {text}", file=sys.stderr))
    win.resize(1400, 900)
    win.show()
    app.processEvents()
    doc = win.doc
    if file:
        read: list[bool] = []
        win.files.open_path(file, lambda: read.append(True), lambda: read.append(False))
        if not _wait(app, lambda: bool(read), SMOKE_TIMEOUT_S) or not read[0]:
            return 1
    else:
        doc.new(512, 384)
        win.tools.set_tool("rect")
        sky = win.tool_objects["rect"]
        assert hasattr(sky, "select")
        sky.select([(0, 0), (512, 230)], "replace")
        fill = win.tool_objects["fill"]
        win.tools.set_color(QColor(110, 160, 225))
        fill.press(ToolEvent(10, 10, 1.0, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
        win.deselect()
        doc.add_layer("Sketch")
        brush = win.tool_objects["brush"]
        strokes = [
            ((70, 120, 40), 60.0, [(0, 300), (120, 250), (260, 270), (400, 240), (512, 280)]),
            ((70, 120, 40), 90.0, [(0, 360), (200, 330), (512, 350)]),
            ((110, 75, 40), 18.0, [(380, 300), (378, 250), (380, 200)]),
            ((40, 110, 40), 70.0, [(350, 190), (380, 160), (410, 190), (380, 210)]),
            ((250, 210, 60), 40.0, [(90, 70), (92, 72)]),
        ]
        for rgb, size, pts in strokes:
            win.tools.set_color(QColor(*rgb))
            win.tools.set_size(size)
            events = [
                ToolEvent(x, y, 1.0, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
                for x, y in pts
            ]
            brush.press(events[0])
            for e in events[1:]:
                brush.move(e)
            brush.release(events[-1])
        win.tools.set_tool("ellipse")
        sel = win.tool_objects["ellipse"]
        assert hasattr(sel, "select")
        sel.select([(250, 120), (490, 340)], "replace")
    win.canvas.fit()
    app.processEvents()
    before = len(doc.layers)
    ctl = win.sdedit
    ctl.set_options(model=model, where="selection", variations=1, seed=7, seed_locked=True, steps=steps)
    outcome: list[str] = []
    ctl.finished.connect(outcome.append)
    started = time.monotonic()
    if not ctl.generate():
        print("noisebrush smoke: the generation did not start", file=sys.stderr)
        win.grab().save(str(out))
        return 1
    _wait(app, lambda: bool(outcome), SMOKE_TIMEOUT_S)
    for _ in range(5):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(out))
    how = outcome[0] if outcome else "timed out"
    added = len(doc.layers) - before
    print(
        f"noisebrush smoke: generation {how} in {time.monotonic() - started:.1f} s; {added} layer(s) added; screenshot {out}"
    )
    doc.undo_stack.setClean()  # nothing to save: do not ask on close
    win.close()
    return 0 if how == "done" and added >= 1 else 1
