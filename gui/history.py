"""The history of results: every finished generation (live or not) kept with its settings, to compare and
apply. Bounded: the last `limit` results (their pixels and a thumbnail) live until the app closes.

The canvas shows one result over the document as an overlay that never enters the undo history: the one
the pointer hovers in the History panel (`peeked`), else the one picked (`shown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QImage

from .commands import AddLayerCommand
from .document import Document
from .model.layer import Layer
from .render import array_image

DEFAULT_LIMIT = 16  # each keeps its pixels: 16 whole 2048x2048 results are 256 MB
THUMBNAIL_PX = 96
_ids = count(1)


@dataclass(eq=False)
class HistoryEntry:
    """One result: its pixels where the mask let it change (document coordinates) and what made it."""

    layer: Layer
    source_uid: int | None  # the layer the result sits above when applied
    seed: int
    strength: float
    prompt: str
    model: str
    steps: int | None = None
    negative_prompt: str = ""
    live: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    image: QImage = field(init=False, repr=False)
    thumbnail: QImage = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The image owns a copy of the pixels: the layer may be handed to the document on Apply.
        self.image = array_image(self.layer.pixels, QImage.Format.Format_RGBA8888).copy()
        self.thumbnail = self.image.scaled(
            THUMBNAIL_PX,
            THUMBNAIL_PX,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )

    @property
    def summary(self) -> str:
        words = [f"seed {self.seed}", f"strength {self.strength:.2f}"]
        if self.prompt:
            words.append(repr(self.prompt))
        return ("Live: " if self.live else "") + ", ".join(words) + f" ({self.model})"

    @property
    def layer_name(self) -> str:
        return f"{'Live' if self.live else 'SDEdit'} (seed {self.seed})"


class ResultHistory(QObject):
    changed = pyqtSignal()  # entries added or dropped
    overlay_changed = pyqtSignal(object)  # the HistoryEntry the canvas should show, or None

    def __init__(self, limit: int = DEFAULT_LIMIT, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if limit < 1:
            raise ValueError(f"the history must keep at least 1 result, got {limit}")
        self.limit = limit
        self.entries: list[HistoryEntry] = []  # oldest first
        self.shown: HistoryEntry | None = None
        self.peeked: HistoryEntry | None = None

    @property
    def overlay(self) -> HistoryEntry | None:
        return self.peeked or self.shown

    def add(self, entry: HistoryEntry, show: bool = False) -> None:
        self.entries.append(entry)
        dropped = self.entries[: -self.limit]
        del self.entries[: -self.limit]
        before = self.overlay
        if self.shown in dropped:
            self.shown = None
        if self.peeked in dropped:
            self.peeked = None
        if show:
            self.shown = entry
        self.changed.emit()
        if self.overlay is not before:
            self.overlay_changed.emit(self.overlay)

    def set_limit(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the history must keep at least 1 result, got {limit}")
        self.limit = limit
        if len(self.entries) > limit:
            before = self.overlay
            dropped = self.entries[:-limit]
            del self.entries[:-limit]
            self.shown = None if self.shown in dropped else self.shown
            self.peeked = None if self.peeked in dropped else self.peeked
            self.changed.emit()
            if self.overlay is not before:
                self.overlay_changed.emit(self.overlay)

    def show(self, entry: HistoryEntry | None) -> None:
        before = self.overlay
        self.shown = entry if entry is None or entry in self.entries else None
        if self.overlay is not before:
            self.overlay_changed.emit(self.overlay)

    def peek(self, entry: HistoryEntry | None) -> None:
        """Show `entry` while the pointer rests on it; None goes back to the picked one."""
        before = self.overlay
        self.peeked = entry if entry is None or entry in self.entries else None
        if self.overlay is not before:
            self.overlay_changed.emit(self.overlay)

    def hide(self) -> None:
        """Nothing over the canvas: the result was applied, Live went off, or the document was replaced."""
        before = self.overlay
        self.peeked = self.shown = None
        if before is not None:
            self.overlay_changed.emit(None)

    def step(self, delta: int) -> HistoryEntry | None:
        """Show the next (or previous) result: one key steps through variations and earlier results."""
        if not self.entries:
            return None
        current = self.overlay
        if current in self.entries:
            i = (self.entries.index(current) + delta) % len(self.entries)
        else:
            i = len(self.entries) - 1 if delta < 0 else 0
            i = len(self.entries) - 1 if current is None else i
        self.peeked = None
        self.show(self.entries[i])
        return self.entries[i]


def commit(doc: Document, entry: HistoryEntry) -> Layer:
    """Add `entry` as a new layer right above its source (on top when that is gone): one undo step."""
    layer = entry.layer.copy(entry.layer_name)
    source = next((la for la in doc.layers if la.uid == entry.source_uid), None)
    index = doc.index_of(source) + 1 if source is not None else len(doc.layers)
    doc.undo_stack.push(AddLayerCommand(doc, layer, index, f"Apply {entry.layer_name}"))
    return layer
