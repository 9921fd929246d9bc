"""Filter > SDEdit... and Filter > LEDITS...: open the NoiseBrush docker in that mode.

Krita's Python plugins cannot register real filters, so these are actions in the Filter menu.
"""

from __future__ import annotations

from typing import Any

from krita import Extension, Krita

from .docker import DOCKER_ID


class NoiseBrushExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)

    def setup(self) -> None:
        pass

    def createActions(self, window: Any) -> None:  # noqa: N802 - Krita's name
        for kind, text in (("sdedit", "SDEdit..."), ("ledits", "LEDITS...")):
            action = window.createAction(f"noisebrush_{kind}", text, "filter")
            action.triggered.connect(lambda _=False, kind=kind: _open_docker(kind))


def _open_docker(kind: str) -> None:
    for docker in Krita.instance().dockers():
        if docker.objectName() == DOCKER_ID:
            docker.set_kind(kind)
            return
