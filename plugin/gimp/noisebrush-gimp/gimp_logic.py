"""The GIMP plug-in's work in plain Python: regions, jobs and new layers through a thin `host` object.

`host` is gimp_host.GimpHost in GIMP and a fake in the unit tests; nothing here imports gi.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nb_client import DEFAULT_URL, Client
from nb_edit import Box, Settings, grow_to, region, result_name
from nb_fields import FIELDS
from nb_jobs import Cancelled, Stop, Target, run_jobs

__all__ = ["Cancelled", "Stop", "run", "read_args", "settings_from", "args_for"]

PREVIEW_NAME = "NoiseBrush preview"
INT_MAX = 2**31 - 1  # GIMP's int arguments are 32-bit: a host limit, below the engine's own seed bound


@dataclass(frozen=True)
class Arg:
    """One argument of a GIMP procedure: a string, boolean, int or double by the type of `default`."""

    name: str
    label: str
    blurb: str  # GIMP shows it as the widget's tooltip
    default: str | bool | int | float
    low: float = 0
    high: float = 0
    field: str = ""  # the Settings field it fills; "" = not a setting (server, token)
    group: str = "run"  # the dialog's frame: GROUPS


# The dialog's frames, in order: related fields together (the prompts side by side, not apart).
GROUPS = {"server": "Server", "text": "Text", "run": "Settings"}

# (argument, Settings field, the server's job field whose default/bounds/help it takes, group, kinds)
_SPEC = (
    ("server-url", "", "", "server", "sdedit ledits"),
    ("token", "", "", "server", "sdedit ledits"),
    ("prompt", "prompt", "prompt", "text", "sdedit"),
    ("negative-prompt", "negative_prompt", "negative_prompt", "text", "sdedit"),
    ("prompt", "prompt", "target_prompt", "text", "ledits"),
    ("concepts", "concepts", "", "text", "ledits"),
    ("model", "model", "model", "run", "sdedit ledits"),
    ("strength", "strength", "strength", "run", "sdedit"),
    ("skip", "skip", "skip", "run", "ledits"),
    ("steps", "steps", "steps", "run", "sdedit ledits"),
    ("seed", "seed", "seed", "run", "sdedit ledits"),
    ("variations", "variations", "variations", "run", "sdedit"),
    ("previews", "previews", "", "run", "sdedit ledits"),
)
_OWN = {  # arguments that are the plug-in's, not a job field's
    "server-url": ("Server URL", "NoiseBrush server URL (noisebrush serve)", DEFAULT_URL),
    "token": ("Token", "server token (empty: read the local token file; noisebrush token --print)", ""),
    "concepts": ("Concepts", "SEGA concepts: 'snow:7, -fog' adds snow (scale 7), removes fog", ""),
    "previews": (
        "Preview layer",
        "show the run's previews in a layer that becomes the result; a Cancel then leaves it, one Undo away",
        # Off by default: GIMP kills a plug-in on Cancel with no chance to clean up, so only without the
        # preview layer does a Cancel leave the image exactly as it was; the progress text still shows the
        # step and the time left.
        False,
    ),
}


def _arg(kind: str, name: str, setting: str, job_field: str, group: str) -> Arg:
    if not job_field:
        label, blurb, default = _OWN[name]
        return Arg(name, label, blurb, default, field=setting, group=group)
    f = FIELDS[kind][job_field]
    label, blurb, default = f["label"].capitalize(), f["help"], f["default"]
    if isinstance(default, str):
        return Arg(name, label, blurb, default, field=setting, group=group)
    low, high = f["low"], f["high"]
    if name == "steps":  # the request's None (the model's own schedule) is 0 here
        return Arg(name, label, f"{blurb}; 0: the model's", 0, 0, high, setting, group)
    if isinstance(low, int) and isinstance(high, int):
        return Arg(name, label, blurb, default, low, min(high, INT_MAX), setting, group)
    return Arg(name, label, blurb, float(default), low, high, setting, group)


def _args(kind: str) -> tuple[Arg, ...]:
    return tuple(_arg(kind, n, s, j, g) for n, s, j, g, kinds in _SPEC if kind in kinds.split())


ARGS = {kind: _args(kind) for kind in ("sdedit", "ledits")}  # in the order of GIMP's dialog


def args_for(kind: str) -> list[Arg]:
    return list(ARGS[kind])


def arg_value(arg: Arg, raw: Any) -> str | int | float:
    """An argument as GIMP handed it over, checked. None means "not given": GIMP 3.0.4 hands an empty
    string argument over as '' on the first start after install and as None once it restores the
    procedure from its cache on later starts; a text argument then is '', any other its default."""
    if raw is None:
        return "" if isinstance(arg.default, str) else arg.default
    if isinstance(arg.default, bool):
        if not isinstance(raw, bool):
            raise ValueError(f"{arg.name} must be true or false, got {raw!r}")
        return raw
    if isinstance(arg.default, str):
        if not isinstance(raw, str):
            raise ValueError(f"{arg.name} must be text, got {type(raw).__name__} {raw!r}")
        return raw
    kind = "a whole number" if isinstance(arg.default, int) else "a number"
    ok = isinstance(raw, int) if isinstance(arg.default, int) else isinstance(raw, (int, float))
    if not ok or isinstance(raw, bool) or not arg.low <= raw <= arg.high:
        raise ValueError(f"{arg.name} must be {kind} from {arg.low:g} to {arg.high:g}, got {raw!r}")
    return raw if isinstance(arg.default, int) else float(raw)


def read_args(get: Callable[[str], Any], kind: str) -> dict[str, Any]:
    """Every argument of the `kind` procedure, read with `get` (the config's get_property), checked."""
    return {a.name: arg_value(a, get(a.name)) for a in args_for(kind)}


def settings_from(values: dict[str, Any], kind: str) -> Settings:
    """The run's Settings from read_args' values."""
    fields = {a.field: values[a.name] for a in args_for(kind) if a.field}
    fields["model"] = fields["model"].strip() or FIELDS[kind]["model"]["default"]
    return Settings(kind=kind, **fields)


class Host(Protocol):
    def layer_bounds(self, drawable: Any) -> Box: ...  # (offset x, offset y, width, height) in image pixels
    def layer_name(self, drawable: Any) -> str: ...
    def selection_bounds(self, image: Any) -> Box | None: ...  # image pixels; None = no selection
    def selection_mask(self, image: Any, box: Box) -> bytes: ...  # one byte per pixel, image pixels
    def read_rgba(self, drawable: Any, box: Box) -> bytes: ...  # layer pixels
    def write_rgba(self, drawable: Any, box: Box, rgba: bytes) -> None: ...
    def add_layer_above(self, image: Any, source: Any, name: str) -> Any: ...  # a copy of source
    def set_name(self, layer: Any, name: str) -> None: ...
    def remove_layer(self, image: Any, layer: Any) -> None: ...
    def undo_group_start(self, image: Any) -> None: ...
    def undo_group_end(self, image: Any) -> None: ...
    def progress(self, fraction: float, text: str = "") -> None: ...
    def flush(self) -> None: ...


def prepare(host: Host, image: Any, drawables: list[Any], settings: Settings) -> list[Target]:
    """For each drawable: the selection's box (grown by the context) inside the layer, its pixels and mask."""
    if not drawables:
        raise ValueError("select a layer first")
    sel = host.selection_bounds(image)
    targets = []
    for d in drawables:
        lx, ly, lw, lh = host.layer_bounds(d)
        x, y, w, h = grow_to(region(sel, (lx, ly, lw, lh), settings.context), (lx, ly, lw, lh))
        mask = host.selection_mask(image, (x, y, w, h)) if sel is not None else None
        local = (x - lx, y - ly, w, h)
        targets.append(Target(d, host.layer_name(d), local, host.read_rgba(d, local), mask))
    return targets


class Edit:
    """One run's changes to the image, all inside one undo group: one Edit > Undo takes the run back.

    The group opens with the first preview (or with the results): a preview layer per source, a copy
    of it named PREVIEW_NAME right above it, shows the server's previews while the run goes, and becomes
    that source's first result at the end, so no preview layer is left over and the history holds the
    one group. GIMP's undo cannot be frozen safely instead: a plug-in killed by GIMP's progress Cancel
    would leave the image's undo frozen for good (GIMP's plug-in cleanup closes open undo groups but
    does not thaw), while an open group is closed for it.
    """

    def __init__(self, host: Host, image: Any, targets: list[Target]) -> None:
        self.host, self.image, self.targets = host, image, targets
        self.open = False
        self.previews: dict[int, Any] = {}  # target index -> its preview layer

    def _begin(self) -> None:
        if not self.open:
            self.host.undo_group_start(self.image)
            self.open = True

    def preview(self, i: int, box: Box, rgba: bytes) -> None:
        self._begin()
        if i not in self.previews:
            self.previews[i] = self.host.add_layer_above(self.image, self.targets[i].node, PREVIEW_NAME)
        self.host.write_rgba(self.previews[i], box, rgba)
        self.host.flush()

    def apply(self, results: list[list[bytes]], settings: Settings) -> list[Any]:
        """Every result as a layer above its source (the first in its preview layer, if one was made)."""
        self._begin()
        made = []
        for i, (t, images) in enumerate(zip(self.targets, results, strict=True)):
            for k, rgba in enumerate(images):
                name = result_name(t.name, settings.kind, k, len(images))
                layer = self.previews.pop(i, None) if k == 0 else None
                if layer is None:
                    layer = self.host.add_layer_above(self.image, made[-1] if k else t.node, name)
                else:
                    self.host.set_name(layer, name)
                self.host.write_rgba(layer, t.box, rgba)
                made.append(layer)
        for layer in self.previews.values():  # a source that got no image back
            self.host.remove_layer(self.image, layer)
        self.previews.clear()
        return made

    def discard(self) -> None:
        """After a cancel or failure: the preview layers go (inside the group, so no step brings them back)."""
        for layer in self.previews.values():
            self.host.remove_layer(self.image, layer)
        self.previews.clear()

    def close(self) -> None:
        if self.open:
            self.host.undo_group_end(self.image)
            self.open = False
        self.host.flush()


def run(
    host: Host,
    image: Any,
    drawables: list[Any],
    settings: Settings,
    client: Client,
    cancel: Stop | None = None,
) -> list[Any]:
    """Send the drawables, show previews in temporary layers, and add the results: one undo group."""
    targets = prepare(host, image, drawables, settings)
    n = len(targets)
    started = clock()

    def on_progress(i: int, step: int, total: int) -> None:
        done = (i + step / max(1, total)) / n
        host.progress(done, progress_text(i, n, step, total, done, clock() - started))

    edit = Edit(host, image, targets)
    try:
        results = run_jobs(client, settings, targets, on_progress, edit.preview, cancel)
        return edit.apply(results, settings)
    except BaseException:
        edit.discard()
        raise
    finally:
        edit.close()


clock = time.monotonic


def progress_text(i: int, n: int, step: int, total: int, done: float, elapsed: float) -> str:
    """Where the run is and, once a step has been timed, about how long it has left."""
    text = f"NoiseBrush: layer {i + 1} of {n}, step {step}/{total}"
    if done <= 0.0 or done >= 1.0:
        return text
    left = elapsed * (1.0 - done) / done
    return f"{text}, about {left:.0f} s left" if left < 120 else f"{text}, about {left / 60:.0f} min left"
