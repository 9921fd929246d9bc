"""What the Studio's benchmarks share: the real window offscreen, waiting on the event loop without spinning,
and a probe of the loop's stalls. Import it inside a case: it loads Qt."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

PROBE_MS = 5  # the probe's timer period: a stall is how much later than this a tick came


def application(name: str) -> QApplication:
    app = QApplication.instance() or QApplication([name])
    assert isinstance(app, QApplication)
    return app


def window(prefix: str, size: tuple[int, int]) -> Any:
    """The real main window with settings and recovery in a fresh temporary folder, shown."""
    from noisebrush.gui.window import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    win = MainWindow(
        settings=QSettings(str(tmp / "bench.ini"), QSettings.Format.IniFormat), recovery_folder=tmp
    )
    win.resize(*size)
    win.show()
    return win


def wait(ms: int, until: Any = None) -> None:
    """Run the event loop (blocking, not spinning) for `ms` or until the signal `until` fires."""
    loop = QEventLoop()
    if until is not None:
        until.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    if until is not None:
        until.disconnect(loop.quit)


class StallProbe:
    """A precise timer ticking every PROBE_MS on the GUI thread; the gaps between ticks are what a user
    feels as a frozen window."""

    def __init__(self) -> None:
        self.intervals: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(PROBE_MS)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.intervals.append(self._clock.nsecsElapsed() / 1e6)
        self._clock.restart()

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> list[float]:
        """The stalls in ms (how much later than PROBE_MS each tick came), the first tick left out."""
        self._timer.stop()
        return [max(0.0, iv - PROBE_MS) for iv in self.intervals[1:]]
