"""Undo and redo of brush, eraser and mask-brush strokes put back every pixel exactly.

Driven through the tools and the document's QUndoStack, as the canvas drives them, on small canvases
that still span several 128-px stroke tiles, with layers that already hold paint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor

from noisebrush.gui.document import Document
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.toolbox import make_tools
from noisebrush.gui.tools import Tool, ToolEvent
from noisebrush.gui.toolstate import ToolState

NO_BUTTON = Qt.MouseButton.LeftButton
NO_MODIFIER = Qt.KeyboardModifier.NoModifier

State = tuple[list[tuple[tuple[int, int, int, int], bytes]], bytes]


@dataclass
class StrokeOp:
    tool: str  # "brush", "eraser", "add" or "subtract" (the mask brush)
    layer: int
    size: float
    hardness: float
    opacity: float
    color: tuple[int, int, int]
    path: list[tuple[float, float, float]]  # x, y, pressure in document coordinates


def _studio(
    width: int, height: int, seed: int, selected: bool = False
) -> tuple[Document, ToolState, dict[str, Tool]]:
    """A document with a white background, a painted layer over all of it and a painted layer that
    covers only part of the canvas (so the first stroke on it also grows it); optionally a soft
    selection over most of the canvas."""
    rng = np.random.default_rng(seed)
    doc = Document(width, height)
    doc.insert_layer(Layer("Paint", rng.integers(0, 256, (height, width, 4), dtype=np.uint8)), 1)
    doc.insert_layer(Layer("Patch", rng.integers(0, 256, (40, 50, 4), dtype=np.uint8), 7, 11), 2)
    if selected:
        mask = np.zeros((height, width), np.uint8)
        mask[height // 8 :, : width - width // 8] = rng.integers(1, 256, dtype=np.uint8)
        doc.set_selection(mask, "Select")
    doc.undo_stack.clear()
    state = ToolState()
    return doc, state, make_tools(doc, state, lambda message: None)


def _event(x: float, y: float, pressure: float) -> ToolEvent:
    return ToolEvent(x, y, pressure, NO_BUTTON, NO_MODIFIER)


def _stroke(doc: Document, state: ToolState, tools: dict[str, Tool], op: StrokeOp) -> None:
    doc.set_active(doc.layers[op.layer % len(doc.layers)])
    state.set(
        size=op.size,
        hardness=op.hardness,
        opacity=op.opacity,
        color=QColor(*op.color),
        select_mode="subtract" if op.tool == "subtract" else "add",
    )
    tool = tools["maskbrush" if op.tool in ("add", "subtract") else op.tool]
    first, *rest = op.path
    tool.press(_event(*first))
    for point in rest:
        tool.move(_event(*point))
    tool.release(_event(*op.path[-1]))


def _state(doc: Document) -> State:
    return [(la.rect, la.pixels.tobytes()) for la in doc.layers], doc.selection.mask.tobytes()


def _differences(got: State, want: State) -> int:
    """How many layer or selection pixels differ (a changed layer geometry counts all its pixels)."""
    (got_layers, got_mask), (want_layers, want_mask) = got, want
    n = int(np.count_nonzero(np.frombuffer(got_mask, np.uint8) != np.frombuffer(want_mask, np.uint8)))
    for (rect, pixels), (want_rect, want_pixels) in zip(got_layers, want_layers, strict=True):
        if rect != want_rect:
            n += rect[2] * rect[3]
        else:
            n += int(
                np.count_nonzero(np.frombuffer(pixels, np.uint8) != np.frombuffer(want_pixels, np.uint8))
            )
    return n


def _point(width: int, height: int) -> st.SearchStrategy[tuple[float, float, float]]:
    return st.tuples(
        st.floats(-12, width + 12, allow_nan=False),
        st.floats(-12, height + 12, allow_nan=False),
        st.floats(0.3, 1.0),
    )


@st.composite
def _stroke_op(draw: st.DrawFn, width: int, height: int) -> StrokeOp:
    return StrokeOp(
        tool=draw(st.sampled_from(["brush", "eraser", "add", "subtract"])),
        layer=draw(st.integers(0, 2)),
        size=draw(st.floats(2.0, 80.0)),  # a thin brush lays a dab per pixel: slow
        hardness=draw(st.floats(0.0, 1.0)),
        opacity=draw(st.floats(0.05, 1.0)),
        color=draw(st.tuples(*[st.integers(0, 255)] * 3)),
        path=draw(st.lists(_point(width, height), min_size=1, max_size=5)),
    )


@st.composite
def _session(draw: st.DrawFn) -> tuple[int, int, int, bool, list[StrokeOp | str]]:
    width, height = draw(st.integers(20, 300)), draw(st.integers(20, 300))
    op = _stroke_op(width, height)
    ops = draw(st.lists(st.one_of(op, op, st.sampled_from(["undo", "redo"])), min_size=1, max_size=8))
    return width, height, draw(st.integers(0, 2**32 - 1)), draw(st.booleans()), ops


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_session())
def test_undo_and_redo_of_strokes_restore_every_pixel(qapp, session) -> None:
    width, height, seed, selected, ops = session
    doc, state, tools = _studio(width, height, seed, selected)
    stack = doc.undo_stack
    snapshots = {0: _state(doc)}  # the state at each undo-stack index
    for op in ops:
        if op == "undo":
            stack.undo()
        elif op == "redo":
            stack.redo()
        else:
            before = stack.index()
            _stroke(doc, state, tools, op)
            if stack.index() == before:  # nothing painted: nothing may have changed
                assert _differences(_state(doc), snapshots[before]) == 0
                continue
            assert stack.index() == before + 1 and stack.count() == before + 1, "one stroke, one step"
            snapshots = {i: s for i, s in snapshots.items() if i <= before}
            snapshots[before + 1] = _state(doc)
            continue
        assert _differences(_state(doc), snapshots[stack.index()]) == 0
    # Walk the whole history back and forth: every step restores its snapshot to the last pixel.
    while stack.canUndo():
        stack.undo()
        assert _differences(_state(doc), snapshots[stack.index()]) == 0
    while stack.canRedo():
        stack.redo()
        assert _differences(_state(doc), snapshots[stack.index()]) == 0


@pytest.mark.parametrize("tool", ["eraser", "brush", "subtract"])
def test_a_diagonal_stroke_then_undo_leaves_no_rectangle(qapp, tool: str) -> None:
    """The issue's case: a diagonal drag of small pointer moves crosses 128-px tiles that no single
    move's box covers; undo used to write zeros (a transparent rectangle) into the ones it missed."""
    doc, state, tools = _studio(300, 260, seed=1, selected=tool == "subtract")
    painted = _state(doc)
    path = [(20.0 + 9 * k, 200.0 - 6 * k, 1.0) for k in range(30)]  # up and right across the tile grid
    _stroke(doc, state, tools, StrokeOp(tool, 1, 16.0, 0.8, 1.0, (10, 200, 30), path))
    assert _differences(_state(doc), painted) > 0
    doc.undo_stack.undo()
    assert _differences(_state(doc), painted) == 0
    doc.undo_stack.redo()
    doc.undo_stack.undo()
    assert _differences(_state(doc), painted) == 0
