"""Runs inside Krita: `kritarunner -s krita_ora_reader -f main FILE.ora REPORT.json [RESAVED.ora]`.

Opens an OpenRaster file the way File > Open does and writes a JSON report of what Krita made of it:
the canvas size, the flattened image (Krita's projection, RGBA hex) and, bottom layer first, each
layer's name, type, blending mode, opacity, visibility, lock, bounds and pixels (RGBA, hex), for
tests/hosts/test_krita_ora.py to compare with what NoiseBrush wrote. With RESAVED.ora it also saves
the document back as OpenRaster with Krita's own writer. Uses nothing but Krita's own Python.
"""

from __future__ import annotations

import json
import traceback

from krita import Krita


def _rgba(node, x: int, y: int, w: int, h: int) -> str:
    bgra = bytes(node.pixelData(x, y, w, h))  # 8-bit RGBA documents hand out BGRA
    out = bytearray(bgra)
    out[0::4], out[2::4] = bgra[2::4], bgra[0::4]
    return out.hex()


def main(args):
    path, report_path = args[:2]
    report = {"file": path}
    try:
        doc = Krita.instance().openDocument(path)
        if doc is None:
            raise RuntimeError(f"Krita could not open {path}")
        doc.waitForDone()
        report["size"] = [doc.width(), doc.height()]
        report["color"] = [doc.colorModel(), doc.colorDepth()]
        layers = []
        for node in doc.rootNode().childNodes():  # bottom first
            b = node.bounds()
            layers.append(
                {
                    "name": node.name(),
                    "type": node.type(),
                    "blend": node.blendingMode(),
                    "opacity": node.opacity(),  # 0..255
                    "visible": node.visible(),
                    "locked": node.locked(),
                    "bounds": [b.x(), b.y(), b.width(), b.height()],
                    "rgba": _rgba(node, b.x(), b.y(), b.width(), b.height()),
                }
            )
        report["layers"] = layers
        doc.refreshProjection()
        doc.waitForDone()
        report["projection"] = _rgba(doc, 0, 0, doc.width(), doc.height())
        if len(args) > 2:
            doc.setBatchmode(True)  # no export dialog
            report["resaved"] = bool(doc.saveAs(args[2]))
        doc.close()
        report["ok"] = True
    except Exception:
        report["ok"] = False
        report["error"] = traceback.format_exc()
    with open(report_path, "w") as f:
        json.dump(report, f)
