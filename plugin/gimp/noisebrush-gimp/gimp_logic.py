"""The GIMP plug-in's work in plain Python: regions, jobs and new layers through a thin `host` object.

`host` is gimp_host.GimpHost in GIMP and a fake in the unit tests; nothing here imports gi.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nb_client import DEFAULT_URL, Client
from nb_edit import KINDS, Box, Settings, grow_to, region, result_name
from nb_jobs import Stop, Target, run_jobs


@dataclass(frozen=True)
class Arg:
    """One argument of the GIMP procedures: a string, int or double by the type of `default`."""

    name: str
    label: str
    blurb: str
    default: str | int | float
    low: float = 0
    high: float = 0
    kinds: tuple[str, ...] = KINDS
    field: str = ""  # the Settings field it fills; "" = not a setting (server, token)


SDEDIT, LEDITS = ("sdedit",), ("ledits",)
ARGS = (  # in the order of GIMP's dialog
    Arg("server-url", "Server", "NoiseBrush server URL", DEFAULT_URL),
    Arg("token", "Token", "server token (empty: read the local token file)", ""),
    Arg("model", "Model", "prior name", "default", field="model"),
    Arg("steps", "Steps", "steps of the schedule (0: the prior's default)", 0, 0, 1000, field="steps"),
    Arg("seed", "Seed", "random seed", 0, 0, 2**31 - 1, field="seed"),
    Arg("prompt", "Prompt", "text prompt (LEDITS: target prompt)", "", field="prompt"),
    Arg("strength", "Strength", "SDEdit t0: 0 keeps the guide, 1 ignores it", 0.5, 0, 1, SDEDIT, "strength"),
    Arg("variations", "Variations", "results per layer", 1, 1, 16, SDEDIT, "variations"),
    Arg("negative-prompt", "Negative prompt", "what to avoid", "", kinds=SDEDIT, field="negative_prompt"),
    Arg(
        "concepts",
        "Concepts",
        "SEGA concepts: 'cat, -hat' adds cat, removes hat",
        "",
        kinds=LEDITS,
        field="concepts",
    ),
    Arg("skip", "Skip", "fraction of the noisiest steps not regenerated", 0.15, 0, 0.99, LEDITS, "skip"),
)


def args_for(kind: str) -> list[Arg]:
    return [a for a in ARGS if kind in a.kinds]


def arg_value(arg: Arg, raw: Any) -> str | int | float:
    """An argument as GIMP handed it over, checked. None means "not given": GIMP 3.0.4 hands an empty
    string argument over as '' on the first start after install and as None once it restores the
    procedure from its cache on later starts; a text argument then is '', any other its default."""
    if raw is None:
        return "" if isinstance(arg.default, str) else arg.default
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
    """The run's Settings from read_args' values (previews off: GIMP shows progress only)."""
    fields = {a.field: values[a.name] for a in args_for(kind) if a.field}
    fields["model"] = fields["model"].strip() or "default"
    return Settings(kind=kind, previews=False, **fields)


class Host(Protocol):
    def layer_bounds(self, drawable: Any) -> Box: ...  # (offset x, offset y, width, height) in image pixels
    def layer_name(self, drawable: Any) -> str: ...
    def selection_bounds(self, image: Any) -> Box | None: ...  # image pixels; None = no selection
    def selection_mask(self, image: Any, box: Box) -> bytes: ...  # one byte per pixel, image pixels
    def read_rgba(self, drawable: Any, box: Box) -> bytes: ...  # layer pixels
    def write_rgba(self, drawable: Any, box: Box, rgba: bytes) -> None: ...
    def add_layer_above(self, image: Any, source: Any, name: str) -> Any: ...  # a copy of source
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


def apply(
    host: Host, image: Any, targets: list[Target], results: list[list[bytes]], settings: Settings
) -> list[Any]:
    """Every result as a new layer above its source, all in one undo group."""
    made = []
    host.undo_group_start(image)
    try:
        for t, images in zip(targets, results, strict=True):
            for k, rgba in enumerate(images):
                layer = host.add_layer_above(
                    image, t.node, result_name(t.name, settings.kind, k, len(images))
                )
                host.write_rgba(layer, t.box, rgba)
                made.append(layer)
    finally:
        host.undo_group_end(image)
    host.flush()
    return made


def run(
    host: Host,
    image: Any,
    drawables: list[Any],
    settings: Settings,
    client: Client,
    cancel: Stop | None = None,
) -> list[Any]:
    targets = prepare(host, image, drawables, settings)
    n = len(targets)
    started = clock()

    def on_progress(i: int, step: int, total: int) -> None:
        done = (i + step / max(1, total)) / n
        host.progress(done, progress_text(i, n, step, total, done, clock() - started))

    results = run_jobs(client, settings, targets, on_progress, None, cancel)
    return apply(host, image, targets, results, settings)


clock = time.monotonic


def progress_text(i: int, n: int, step: int, total: int, done: float, elapsed: float) -> str:
    """GIMP shows no preview from a plug-in while it waits on the server: the progress text says where the
    run is and, once a step has been timed, about how long it has left."""
    text = f"NoiseBrush: layer {i + 1} of {n}, step {step}/{total}"
    if done <= 0.0 or done >= 1.0:
        return text
    left = elapsed * (1.0 - done) / done
    return f"{text}, about {left:.0f} s left" if left < 120 else f"{text}, about {left / 60:.0f} min left"
