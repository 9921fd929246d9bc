"""Every call into GIMP 3 (GObject introspection), in one thin module. Pixels cross as RGBA bytes."""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402
from nb_edit import Box  # noqa: E402

RGBA = "R'G'B'A u8"


class GimpHost:
    def layer_bounds(self, drawable: Any) -> Box:
        _, x, y = drawable.get_offsets()
        return x, y, drawable.get_width(), drawable.get_height()

    def layer_name(self, drawable: Any) -> str:
        return drawable.get_name()

    def selection_bounds(self, image: Any) -> Box | None:
        _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        return (x1, y1, x2 - x1, y2 - y1) if non_empty else None

    def selection_mask(self, image: Any, box: Box) -> bytes:
        buf = image.get_selection().get_buffer()
        return bytes(buf.get(Gegl.Rectangle.new(*box), 1.0, "Y u8", Gegl.AbyssPolicy.NONE))

    def read_rgba(self, drawable: Any, box: Box) -> bytes:
        buf = drawable.get_buffer()
        return bytes(buf.get(Gegl.Rectangle.new(*box), 1.0, RGBA, Gegl.AbyssPolicy.CLAMP))

    def write_rgba(self, drawable: Any, box: Box, rgba: bytes) -> None:
        buf = drawable.get_buffer()
        buf.set(Gegl.Rectangle.new(*box), RGBA, rgba)
        buf.flush()
        drawable.update(*box)

    def add_layer_above(self, image: Any, source: Any, name: str) -> Any:
        layer = source.copy()
        layer.set_name(name)
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        return layer

    def set_name(self, layer: Any, name: str) -> None:
        layer.set_name(name)

    def remove_layer(self, image: Any, layer: Any) -> None:
        image.remove_layer(layer)

    def undo_group_start(self, image: Any) -> None:
        image.undo_group_start()

    def undo_group_end(self, image: Any) -> None:
        image.undo_group_end()

    def progress(self, fraction: float, text: str = "") -> None:
        if text:
            Gimp.progress_set_text(text)
        Gimp.progress_update(min(1.0, max(0.0, fraction)))

    def flush(self) -> None:
        Gimp.displays_flush()
