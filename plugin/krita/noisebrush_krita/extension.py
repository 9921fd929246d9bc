"""Filter > NoiseBrush > SDEdit, LEDITS and Settings...

Krita's Python plugins cannot register real filters, so these are actions in a submenu of the Filter
menu. SDEdit and LEDITS run at once on the selection (or the selected layers) with the docker's current
settings; Settings... opens the docker. Action names: noisebrush_sdedit, noisebrush_ledits,
noisebrush_settings (Krita.instance().action(name) finds them; Settings > Configure Krita > Keyboard
Shortcuts can bind them).
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
        action = window.createAction("noisebrush_settings", "Settings...", "filter")
        action.triggered.connect(lambda _=False: _with_docker(NoiseBrushDocker.open))
        actions.append(action)
        # Krita 5.1.5 puts actions into their menu (existing menus only) some time after the window is
        # built: once they are in the Filter menu, move them into a NoiseBrush submenu.
        _into_submenu_soon(window, actions, tries=40)


def _into_submenu_soon(window: Any, actions: list[Any], tries: int) -> None:
    menu = _filter_menu(window)
    if menu is None or not _loose(menu, actions):
        if tries > 0:
            QTimer.singleShot(250, lambda: _into_submenu_soon(window, actions, tries - 1))
        return
    _into_submenu(menu, actions)
    menu.aboutToShow.connect(lambda: _into_submenu(menu, actions))  # in case Krita puts them back


def _filter_menu(window: Any) -> Any:
    for top in window.qwindow().menuBar().actions():
        if top.menu() is not None and top.objectName().lower() == "filter":
            return top.menu()
    return None


def _loose(menu: Any, actions: list[Any]) -> list[Any]:
    """Those of `actions` sitting directly in `menu` (by name: Krita may hand out other wrappers)."""
    names = {a.objectName() for a in actions}
    return [a for a in menu.actions() if a.objectName() in names]


def _into_submenu(menu: Any, actions: list[Any]) -> None:
    """Filter > NoiseBrush > the actions."""
    loose = _loose(menu, actions)
    if not loose:
        return
    for action in loose:
        menu.removeAction(action)
    sub = next((a.menu() for a in menu.actions() if a.objectName() == MENU_NAME), None)
    if sub is None:
        menu.addSeparator()
        sub = menu.addMenu("NoiseBrush")
        sub.menuAction().setObjectName(MENU_NAME)
    sub.addActions(loose)


def _with_docker(call: Any) -> None:
    for docker in Krita.instance().dockers():
        if docker.objectName() == DOCKER_ID:
            call(docker)
            return
