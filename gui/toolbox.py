"""The Studio's tools by name: the painting and selection tools (tools.py) and the placing tools built on
them (placing.py), gathered here so neither module has to import the other's."""

from __future__ import annotations

from collections.abc import Callable

from .document import Document
from .placing import MoveTool, TransformTool
from .tools import BrushTool, FillTool, MaskBrushTool, PickerTool, ShapeSelectTool, Tool
from .toolstate import ToolState


def make_tools(doc: Document, state: ToolState, notify: Callable[[str], None]) -> dict[str, Tool]:
    return {
        "brush": BrushTool(doc, state, notify, erase=False),
        "eraser": BrushTool(doc, state, notify, erase=True),
        "picker": PickerTool(doc, state, notify),
        "fill": FillTool(doc, state, notify),
        "rect": ShapeSelectTool(doc, state, notify, "rect"),
        "ellipse": ShapeSelectTool(doc, state, notify, "ellipse"),
        "lasso": ShapeSelectTool(doc, state, notify, "polygon"),
        "maskbrush": MaskBrushTool(doc, state, notify),
        "pan": Tool(doc, state, notify),
        "move": MoveTool(doc, state, notify),
        "transform": TransformTool(doc, state, notify),
    }
