"""SDEdit from the app: options, the run on the worker thread, the live preview, and the results as
new layers (one undo step), with variations to step through before keeping one."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QImage

from noisebrush.core.engine.fields import Spec, specs
from noisebrush.core.engine.requests import CONTROL_MAPS, MAX_LORA_WEIGHT, Lora, SDEditRequest
from noisebrush.core.errors import BadInput

from .commands import AddLayerCommand
from .document import Document
from .engines import EngineHolder
from .history import HistoryEntry, ResultHistory
from .layer_batch import LayerResult, batch_job, layer_batch
from .model.layer import Layer
from .render import array_image
from .targets import Target, build_targets, layer_region, result_layer
from .worker import EngineWorker, JobRunner

SPECS = specs(SDEditRequest)  # the panel's defaults and bounds, declared once on the request
# One LoRA's weight: its bounds are the ones the request checks (requests.check_loras), its default Lora's.
LORA_WEIGHT = Spec(
    "weight",
    Lora._field_defaults["weight"],
    "how strongly the LoRA applies (1: as trained, 0: not at all, below 0: inverted)",
    float,
    low=-MAX_LORA_WEIGHT,
    high=MAX_LORA_WEIGHT,
    label="LoRA weight",
)
# Where the control image comes from: none (no ControlNet runs), one the engine makes from the guide
# (the request's control_map), or a layer of the document cut to the guide's box (the request's control).
CONTROL_SOURCES = ("none", *CONTROL_MAPS, "layer")


@dataclass
class SDEditOptions:
    """The SDEdit panel's settings; the request's fields take their defaults from the request itself."""

    model: str = SPECS["model"].default
    strength: float = SPECS["strength"].default
    steps: int | None = SPECS["steps"].default  # None: the prior's default
    seed: int = SPECS["seed"].default
    seed_locked: bool = False
    variations: int = SPECS["variations"].default
    prompt: str = SPECS["prompt"].default
    negative_prompt: str = SPECS["negative_prompt"].default
    where: str = "selection"  # see targets.WHERE
    shared_noise: bool = False  # "layers": every layer from the seed's noise (else layer n: seed + n)
    device: str = SPECS["device"].default
    loras: tuple[Lora, ...] = SPECS["loras"].default  # sent only to models that take them
    controlnet: str = SPECS["controlnet"].default
    control_source: str = "none"  # see CONTROL_SOURCES
    control_layer: int | None = None  # the uid of the layer a "layer" control source reads
    control_scale: float = SPECS["control_scale"].default


@dataclass
class Pending:
    """Layers of the last generation whose variations can still be stepped through."""

    layers: list[Layer]
    variations: list[list[np.ndarray]]  # per layer, one pixel array per variation
    index: int = 0
    undo_index: int = 0  # the undo stack's index right after the generation
    seeds: list[list[int]] = field(default_factory=list)  # per layer, the seed of each variation


def preview_image(rgb: np.ndarray, box: tuple[int, int, int, int], target: Target) -> tuple[QImage, int, int]:
    """The preview of `box` (guide coordinates) as an RGBA image clipped to the target's mask."""
    x, y, w, h = box
    h, w = min(h, rgb.shape[0]), min(w, rgb.shape[1])
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rgb[:h, :w, :3]
    if target.mask is None:
        rgba[..., 3] = 255
    else:
        rgba[..., 3] = np.clip(target.mask[y : y + h, x : x + w] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    img = array_image(rgba, QImage.Format.Format_RGBA8888).copy()
    return img, target.box[0] + x, target.box[1] + y


class SDEditController(QObject):
    running_changed = pyqtSignal(bool)
    progress = pyqtSignal(int, int, float)  # step, total, seconds left
    preview_changed = pyqtSignal(object, int, int)  # QImage or None, document x, y
    variations_changed = pyqtSignal(int, int)  # index, count (count 0: nothing pending)
    message = pyqtSignal(str)  # for the status bar
    error = pyqtSignal(str)  # for a dialog
    finished = pyqtSignal(str)  # "done", "cancelled" or "failed"
    options_changed = pyqtSignal()

    def __init__(
        self, doc: Document, engines: EngineHolder, runner: JobRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.doc, self.engines, self.runner = doc, engines, runner
        self.options = SDEditOptions()
        self.pending: Pending | None = None
        self.history: ResultHistory | None = None  # every result is kept here when set
        # Asked when the runner is busy: True if that run may be cancelled for this one (a live run).
        self.preemptible: Callable[[], bool] = lambda: False
        self._generate_wanted: int | None = None  # a Generate waits for the cancelled run to end (its seed)
        self._targets: list[Target] = []
        self._mine = False
        self._started = 0.0
        runner.progress.connect(self._on_progress)
        runner.preview.connect(self._on_preview)
        runner.succeeded.connect(self._on_done)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        runner.busy_changed.connect(self._on_busy)
        doc.undo_stack.indexChanged.connect(self._on_history)
        doc.reset.connect(self._drop_pending)

    @property
    def running(self) -> bool:
        return self._mine and self.runner.busy

    @property
    def batch_size(self) -> int:
        """How many layers (or selections) the run works through, one after another."""
        return len(self._targets)

    def set_options(self, **values: object) -> None:
        new = replace(self.options, **values)  # type: ignore[arg-type]
        if new != self.options:  # Live mode re-runs on a change: a click that changes nothing is none
            self.options = new
            self.options_changed.emit()

    def requests(self, targets: list[Target]) -> list[SDEditRequest]:
        """One request per target. LoRAs and the ControlNet go only to a model that takes them (the panel
        shows them off for any other); BadInput when the control layer cannot serve these targets."""
        o = self.options
        addons = not self.engines.addons_refused(o.model)
        controlled = addons and bool(o.controlnet) and o.control_source != "none"
        layer = self._control_layer(targets) if controlled and o.control_source == "layer" else None
        made_from_guide = (
            o.control_source if o.control_source in CONTROL_MAPS else SPECS["control_map"].default
        )
        return [
            SDEditRequest(
                guide=t.guide,
                mask=t.mask,
                model=o.model,
                strength=o.strength,
                steps=o.steps,
                seed=o.seed,
                variations=o.variations,
                prompt=o.prompt,
                negative_prompt=o.negative_prompt,
                device=o.device,
                loras=o.loras if addons else (),
                controlnet=o.controlnet if controlled else "",
                control=None if layer is None else layer_region(layer, t.box),
                control_map=made_from_guide,
                control_scale=o.control_scale,
            )
            for t in targets
        ]

    def _control_layer(self, targets: list[Target]) -> Layer:
        layer = next((la for la in self.doc.layers if la.uid == self.options.control_layer), None)
        if layer is None:
            raise BadInput("the control layer is no longer in the document; pick another one under Control")
        # Every selected layer runs as one batch that shares its fields, the control image with them.
        if self.options.where == "layers" and len({t.box for t in targets}) > 1:
            raise BadInput(
                "a layer as the control image needs one box for every layer, and these layers cover "
                "different boxes; use the edges or scribble of each guide, or Selection / Active layer"
            )
        return layer

    def generate(self, seed: int | None = None) -> bool:
        """Start a run on what `options.where` names, with `seed` if given (else a new one unless the seed is
        locked); False (with a message) if it cannot start. A live run under way gives way to it."""
        if self.runner.busy:
            if self.preemptible():
                self._generate_wanted = self.options.seed if seed is None else seed
                self.runner.cancel()
                return True
            self.message.emit("A generation is already running")
            return False
        if seed is not None:
            self.set_options(seed=seed)
        elif not self.options.seed_locked:
            self.set_options(seed=random.randrange(0, 2**31))
        targets = build_targets(self.doc, self.options.where)
        if not targets:
            self.error.emit("Nothing to generate on: the selection does not touch the chosen layers.")
            return False
        batch = None
        try:
            reqs = self.requests(targets)
            if self.options.where == "layers":
                # The shared fields only: a layer the engine cannot take fails alone, the others still run.
                batch = layer_batch(targets, reqs[0], self.options.shared_noise)
                batch.validate()
            else:
                for r in reqs:
                    r.validate()
        except ValueError as e:
            self.error.emit(str(e))
            return False
        self._drop_pending()
        self._targets = targets
        engines = self.engines

        def job(worker: EngineWorker) -> list[list[np.ndarray]]:
            engine = engines.get()
            outs = []
            for i, req in enumerate(reqs):
                worker.tag = i
                worker.check_cancel()
                outs.append(engine.sdedit(req, callback=worker.callback, should_stop=worker.should_stop))
                engines.mark_warm(req.model, req.device)
            return outs

        self._mine = True
        self._started = time.monotonic()
        if batch is not None:  # the batch runner every surface shares
            self.runner.start(batch_job(engines, batch, self.options.variations))
        else:
            self.runner.start(job)
        self.running_changed.emit(True)
        loading = not engines.is_warm(self.options.model, self.options.device)
        self.message.emit("Generating\u2026" + (" (loading the model first)" if loading else ""))
        return True

    def _on_busy(self, busy: bool) -> None:
        if not busy and self._generate_wanted is not None:
            seed, self._generate_wanted = self._generate_wanted, None
            self.generate(seed)

    def cancel(self) -> None:
        self._generate_wanted = None
        if self.running:
            self.runner.cancel()
            self.message.emit("Cancelling\u2026")

    # --- worker results -------------------------------------------------------------------------

    def _on_progress(self, step: int, total: int, left: float) -> None:
        if self._mine:
            self.progress.emit(step, total, left)

    def _on_preview(self, rgb: np.ndarray, box: tuple[int, int, int, int], tag: object) -> None:
        if not self._mine or not isinstance(tag, int) or tag >= len(self._targets):
            return
        img, x, y = preview_image(rgb, box, self._targets[tag])
        self.preview_changed.emit(img, x, y)

    def _end(self, how: str) -> None:
        self._mine = False
        self._targets = []
        self.preview_changed.emit(None, 0, 0)
        self.running_changed.emit(False)
        self.finished.emit(how)

    def _on_done(self, outs: object) -> None:
        if not self._mine:
            return
        assert isinstance(outs, list)
        seed = self.options.seed
        results = [
            r if isinstance(r, LayerResult) else LayerResult(r, [seed + i for i in range(len(r))])
            for r in outs
        ]
        failed = [
            f"{t.source.name}: {r.reason}" for t, r in zip(self._targets, results, strict=True) if r.reason
        ]
        if failed and len(failed) == len(results):
            self.error.emit("Generation failed on every layer:\n" + "\n".join(failed))
            self._end("failed")
            return
        layers: list[Layer] = []
        variations: list[list[np.ndarray]] = []
        seeds: list[list[int]] = []
        self.doc.undo_stack.beginMacro("Generate (SDEdit)")
        try:
            for target, result in zip(self._targets, results, strict=True):
                made = [result_layer(target, img, "") for img in result.images]
                first = made[0] if made else None
                if first is None or target.source not in self.doc.layers:
                    continue
                first.name = f"SDEdit {target.source.name} (seed {result.seeds[0]})"
                index = self.doc.index_of(target.source) + 1
                self.doc.undo_stack.push(AddLayerCommand(self.doc, first, index, "Generated layer"))
                layers.append(first)
                variations.append([(m or first).pixels.copy() for m in made])
                seeds.append(result.seeds)
                self._keep(target, made, result.seeds)
        finally:
            self.doc.undo_stack.endMacro()
        elapsed = time.monotonic() - self._started
        n = len(variations[0]) if variations else 0
        if layers and n > 1:
            self.pending = Pending(layers, variations, 0, self.doc.undo_stack.index(), seeds)
            self.variations_changed.emit(0, n)
        done = f"Generated {len(layers)} layer(s) in {elapsed:.1f} s"
        self.message.emit(done + "".join(f"; failed {f}" for f in failed))
        self._end("done")

    def _keep(self, target: Target, made: list[Layer | None], seeds: list[int]) -> None:
        """Every variation goes to the history (the first is the layer just added)."""
        if self.history is None:
            return
        o = self.options
        for layer, seed in zip(made, seeds, strict=True):
            if layer is not None:
                self.history.add(
                    HistoryEntry(
                        layer.copy(layer.name),
                        target.source.uid,
                        seed,
                        o.strength,
                        o.prompt,
                        o.model,
                        o.steps,
                        o.negative_prompt,
                    )
                )

    def _on_failed(self, text: str) -> None:
        if self._mine:
            self.error.emit(f"Generation failed: {text}")
            self._end("failed")

    def _on_cancelled(self) -> None:
        if self._mine:
            self.message.emit("Cancelled; the document is unchanged")
            self._end("cancelled")

    # --- variations ---------------------------------------------------------------------------

    def show_variation(self, index: int) -> None:
        p = self.pending
        if p is None:
            return
        index %= len(p.variations[0])
        for layer, pixels, seeds in zip(p.layers, p.variations, p.seeds, strict=True):
            if layer in self.doc.layers:
                layer.pixels[...] = pixels[index]
                layer.name = f"{layer.name.rsplit(' (seed', 1)[0]} (seed {seeds[index]})"
                self.doc.touched(layer, (0, 0, layer.width, layer.height))
        p.index = index
        self.doc.layers_changed.emit()
        self.variations_changed.emit(index, len(p.variations[0]))

    def step_variation(self, delta: int) -> None:
        if self.pending is not None:
            self.show_variation(self.pending.index + delta)

    def keep_variation(self) -> None:
        """Keep the variation on show; the others are dropped."""
        if self.pending is not None:
            self.message.emit(f"Kept variation {self.pending.index + 1}")
        self._drop_pending()

    def _drop_pending(self) -> None:
        if self.pending is not None:
            self.pending = None
            self.variations_changed.emit(0, 0)

    def _on_history(self, index: int) -> None:
        # Once anything else is done or undone, stepping would overwrite that work.
        if self.pending is not None and index != self.pending.undo_index:
            self._drop_pending()
