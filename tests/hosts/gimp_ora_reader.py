# Runs inside GIMP 3 (gimp-console-3.0 --batch-interpreter=python-fu-eval): opens NB_ORA with GIMP's own
# OpenRaster loader and writes what it finds, bottom layer first, to NB_REPORT, with the flattened
# image; with NB_RESAVED set it also saves the image back as OpenRaster with GIMP's own exporter.
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
                "mode": int(layer.get_mode()),
                "mode_name": layer.get_mode().value_nick,
                "blend_space": layer.get_blend_space().value_nick,
                "composite_mode": layer.get_composite_mode().value_nick,
                "opacity": layer.get_opacity(),
                "visible": layer.get_visible(),
                "bounds": [x, y, w, h],
                "rgba": bytes(rgba).hex(),
            }
        )
    report["layers"] = layers
    if os.environ.get("NB_RESAVED"):
        resaved = Gio.File.new_for_path(os.environ["NB_RESAVED"])
        report["resaved"] = bool(Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, resaved, None))

    def flattened(perceptual):
        copy = image.duplicate()
        if perceptual:  # blend and composite on the stored sRGB values, not in linear light
            for layer in copy.get_layers():
                layer.set_blend_space(Gimp.LayerColorSpace.RGB_PERCEPTUAL)
                layer.set_composite_space(Gimp.LayerColorSpace.RGB_PERCEPTUAL)
        rect = Gegl.Rectangle.new(0, 0, image.get_width(), image.get_height())
        flat = copy.flatten().get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
        return bytes(flat).hex()

    report["flattened"] = flattened(False)
    report["flattened_perceptual"] = flattened(True)
    report["ok"] = True
except Exception:
    report["error"] = traceback.format_exc()
with open(os.environ["NB_REPORT"], "w") as f:
    json.dump(report, f)
