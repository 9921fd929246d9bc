"""GUI tests drive the real window offscreen with a fake engine (no model needed)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from gui_fakes import FakeEngine  # noqa: E402
from PyQt6.QtCore import QSettings  # noqa: E402

from noisebrush.gui.engines import EngineHolder  # noqa: E402


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def window(qtbot, tmp_path, fake_engine):
    from noisebrush.gui.window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(
        settings=settings, engines=EngineHolder(lambda: fake_engine), recovery_folder=tmp_path / "rec"
    )

    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.doc.undo_stack.setClean()
    win.files.jobs.wait(20000)
    if win.runner.busy:
        win.runner.cancel()
        win.runner.wait(10000)
    win.close()
