"""NoiseBrush for Krita 5 (PyQt5) and 6 (PyQt6): SDEdit and LEDITS through a NoiseBrush server.

Uses only Krita's Python, its Qt and the standard library; the engine runs in the server.
"""

from __future__ import annotations

try:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
except ImportError:  # imported outside Krita (unit tests of the plain modules)
    Krita = None

if Krita is not None and Krita.instance() is not None:
    from .docker import DOCKER_ID, NoiseBrushDocker
    from .extension import NoiseBrushExtension

    _app = Krita.instance()
    _app.addExtension(NoiseBrushExtension(_app))
    _right = getattr(DockWidgetFactoryBase, "DockPosition", DockWidgetFactoryBase).DockRight
    _app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, _right, NoiseBrushDocker))
