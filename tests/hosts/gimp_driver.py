# Runs inside GIMP 3 (gimp-console-3.0 --batch-interpreter=python-fu-eval): NB_URL, NB_TOKEN, NB_REPORT,
# NB_SCENARIO (single, batch), NB_KIND (sdedit, ledits) and NB_TEXT (JSON: text arguments to set; the others
# keep the procedure's defaults, which GIMP restores from its cache on later starts) from the environment.
# Calls the installed plug-in through the PDB and reports what came out. NB_SCENARIO=undo (full GIMP under
# Xvfb): the image gets a display; after the run the driver writes NB_REPORT.ran with the layer stacks
# before and after, waits for NB_REPORT.undone (the test presses Ctrl+Z in the image window meanwhile) and
# records the stack again. NB_RUN_MODE=interactive opens the procedure's dialog (for screenshots).
import hashlib
import json
import os
import random
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

W, H = 96, 80
SEL = (24, 16, 40, 32)
FMT = "R'G'B'A u8"
report = {"ok": False}
try:
    image = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
    layers = []
    for n in range(3 if "batch" in (os.environ["NB_SCENARIO"], os.environ.get("NB_LAYERS")) else 1):
        layer = Gimp.Layer.new(
            image, f"Layer {n + 1}", W, H, Gimp.ImageType.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL
        )
        image.insert_layer(layer, None, 0)
        rnd = random.Random(n)
        src = bytes(rnd.randrange(256) if i % 4 != 3 else 255 for i in range(W * H * 4))
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, W, H), FMT, src)
        buf.flush()
        layers.append((layer, src))
    image.select_rectangle(Gimp.ChannelOps.REPLACE, *SEL)

    def stack():
        """Every layer, top first: name, offsets, size and a hash of its pixels."""
        out = []
        for lyr in image.get_layers():
            w, h = lyr.get_width(), lyr.get_height()
            px = bytes(lyr.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, FMT, Gegl.AbyssPolicy.NONE))
            _, ox, oy = lyr.get_offsets()
            out.append([lyr.get_name(), ox, oy, w, h, hashlib.sha1(px).hexdigest()[:16]])
        return out

    undo = os.environ["NB_SCENARIO"] == "undo"
    if undo or os.environ.get("NB_RUN_MODE") == "interactive":
        image.clean_all()
        report["display"] = Gimp.Display.new(image) is not None
        Gimp.displays_flush()
    report["stack_before"] = stack()
    kind = os.environ.get("NB_KIND", "sdedit")
    label = {"sdedit": "SDEdit", "ledits": "LEDITS"}[kind]
    proc = Gimp.get_pdb().lookup_procedure(f"noisebrush-{kind}")
    report["menu_paths"] = list(proc.get_menu_paths()) if proc else None
    config = proc.create_config()
    interactive = os.environ.get("NB_RUN_MODE") == "interactive"
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE if interactive else Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer for layer, _ in layers])
    config.set_property("server-url", os.environ["NB_URL"])
    config.set_property("token", os.environ["NB_TOKEN"])
    config.set_property("steps", int(os.environ.get("NB_STEPS", "0")))
    config.set_property("seed", 1)
    if kind == "sdedit":
        config.set_property("strength", 0.6)
    for name, value in json.loads(os.environ.get("NB_TEXT") or "{}").items():
        config.set_property(name, value)
    texts = ["prompt", "model", "negative-prompt" if kind == "sdedit" else "concepts"]
    # what the procedure's config holds: '' or None for an untouched text, by GIMP start
    report["text_before_run"] = {name: config.get_property(name) for name in texts}
    result = proc.run(config)
    report["status"] = result.index(0).value_nick
    if result.length() > 1:
        report["message"] = str(result.index(1))
    report["order"] = [lyr.get_name() for lyr in image.get_layers()]  # top first
    report["stack_after"] = stack()
    if undo:
        Gimp.displays_flush()
        with open(os.environ["NB_REPORT"] + ".ran", "w") as f:
            json.dump(report, f)
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["NB_REPORT"] + ".undone") and time.monotonic() < deadline:
            time.sleep(0.1)
        report["stack_after_undo"] = stack()
    report["results"] = []
    for lyr in image.get_layers():
        name = lyr.get_name()
        if not name.endswith(f"({label})"):
            continue
        src = next(s for layer, s in layers if layer.get_name() == name.split(" (")[0])
        out = bytes(lyr.get_buffer().get(Gegl.Rectangle.new(0, 0, W, H), 1.0, FMT, Gegl.AbyssPolicy.NONE))
        x0, y0, w, h = SEL
        outside_equal, changed_inside = True, 0
        for y in range(H):
            for x in range(W):
                i = (y * W + x) * 4
                if x0 <= x < x0 + w and y0 <= y < y0 + h:
                    changed_inside += src[i : i + 4] != out[i : i + 4]
                elif src[i : i + 4] != out[i : i + 4]:
                    outside_equal = False
        _, ox, oy = lyr.get_offsets()
        report["results"].append(
            {
                "name": name,
                "size": [lyr.get_width(), lyr.get_height()],
                "offsets": [ox, oy],
                "outside_equal": outside_equal,
                "changed_inside": changed_inside,
            }
        )
    report["sources_unchanged"] = all(
        bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, W, H), 1.0, FMT, Gegl.AbyssPolicy.NONE)) == src
        for layer, src in layers
    )
    report["ok"] = True
except Exception:
    report["error"] = traceback.format_exc()
with open(os.environ["NB_REPORT"], "w") as f:
    json.dump(report, f)
