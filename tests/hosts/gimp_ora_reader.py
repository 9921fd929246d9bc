# Runs inside GIMP 3 (gimp-console-3.0 --batch-interpreter=python-fu-eval): opens NB_ORA with GIMP's own
# OpenRaster loader and writes what it finds, bottom layer first, to NB_REPORT.
import json
import os
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

report = {"ok": False}
try:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.environ["NB_ORA"]))
    report["size"] = [image.get_width(), image.get_height()]
    layers = []
    for layer in reversed(image.get_layers()):  # GIMP lists top first
        offsets = layer.get_offsets()
        x, y = offsets[-2], offsets[-1]
        w, h = layer.get_width(), layer.get_height()
        rgba = layer.get_buffer().get(
            Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE
        )
        layers.append(
            {
                "name": layer.get_name(),
                "opacity": layer.get_opacity(),
                "visible": layer.get_visible(),
                "bounds": [x, y, w, h],
                "rgba": bytes(rgba).hex(),
            }
        )
    report["layers"] = layers
    report["ok"] = True
except Exception:
    report["error"] = traceback.format_exc()
with open(os.environ["NB_REPORT"], "w") as f:
    json.dump(report, f)
