"""Filter > NoiseBrush > SDEdit, LEDITS, SDEdit Every Keyframe and Settings...

Krita's Python plugins cannot register real filters, so these are actions in a submenu of the Filter
menu. SDEdit and LEDITS run at once on the selection (or the selected layers) with the docker's current
settings; SDEdit Every Keyframe runs SDEdit on every keyframe of the active animated layer, as one batch;
Settings... opens the docker. Action names: noisebrush_sdedit, noisebrush_ledits,
noisebrush_sdedit_frames, noisebrush_settings (Krita.instance().action(name) finds them; Settings >
Configure Krita > Keyboard Shortcuts can bind them).
"""

from __future__ import annotations

from typing import Any

from krita import Extension, Krita

from .docker import DOCKER_ID, NoiseBrushDocker
from .nb_edit import LABELS
from .qtcompat import QTimer

MENU_NAME = "noisebrush"  # object name of the submenu's action


class NoiseBrushExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)

    def setup(self) -> None:
        pass

    def createActions(self, window: Any) -> None:  # noqa: N802 - Krita's name
        actions = []
        for kind, label in LABELS.items():
            action = window.createAction(f"noisebrush_{kind}", label, "filter")
            action.setToolTip(f"Run NoiseBrush {label} on the selection with the docker's settings")
            action.triggered.connect(lambda _=False, kind=kind: _with_docker(lambda d: d.run(kind)))
            actions.append(action)
        action = window.createAction("noisebrush_sdedit_frames", "SDEdit Every Keyframe", "filter")
        action.setToolTip(
            "Run NoiseBrush SDEdit on every keyframe of the active animated layer, as one batch, into a copy "
            "of the layer"
        )
        action.triggered.connect(lambda _=False: _with_docker(NoiseBrushDocker.run_frames))
        actions.append(action)
        action = window.createAction("noisebrush_settings", "Settings...", "filter")
        action.triggered.connect(lambda _=False: _with_docker(NoiseBrushDocker.open))
        actions.append(action)
        # Krita 5.1.5 builds the menu bar after createActions (it is empty here) and ignores a
        # "filter/<submenu>" location it cannot find then; the Window wrapper is deleted soon after, but
        # its QMainWindow lives on. So once the Filter menu exists, the actions go into our submenu.
        # Only the QMainWindow and the action names are kept: Krita may delete the wrappers' objects.
        _into_submenu_soon(window.qwindow(), [a.objectName() for a in actions], tries=120)


def _into_submenu_soon(qwindow: Any, names: list[str], tries: int) -> None:
    menu = _filter_menu(qwindow)
    if menu is None:
        if tries > 0:
            QTimer.singleShot(250, lambda: _into_submenu_soon(qwindow, names, tries - 1))
        return
    _into_submenu(menu, names)
    # Krita may plug the actions into the Filter menu later: tidy up again whenever it opens.
    menu.aboutToShow.connect(lambda: _tidy(qwindow, names))


def _tidy(qwindow: Any, names: list[str]) -> None:
    menu = _filter_menu(qwindow)
    if menu is not None:
        _into_submenu(menu, names)


def _filter_menu(qwindow: Any) -> Any:
    for top in qwindow.menuBar().actions():
        if top.menu() is not None and top.objectName().lower() == "filter":
            return top.menu()
    return None


def _into_submenu(menu: Any, names: list[str]) -> None:
    """Filter > NoiseBrush > the actions, taken out of the Filter menu itself if Krita put them there."""
    for loose in [a for a in menu.actions() if a.objectName() in names]:
        menu.removeAction(loose)
    sub = next((a.menu() for a in menu.actions() if a.objectName() == MENU_NAME), None)
    if sub is None:
        menu.addSeparator()
        sub = menu.addMenu("NoiseBrush")
        sub.menuAction().setObjectName(MENU_NAME)
    if [a.objectName() for a in sub.actions()] != names:
        sub.clear()
        sub.addActions([a for a in map(Krita.instance().action, names) if a is not None])


def _with_docker(call: Any) -> None:
    for docker in Krita.instance().dockers():
        if docker.objectName() == DOCKER_ID:
            call(docker)
            return
