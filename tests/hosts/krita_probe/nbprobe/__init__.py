"""A throwaway Krita plugin that tests the installed NoiseBrush plugin from inside a full Krita window.

Enabled next to noisebrush_krita by tests/hosts/test_krita_install.py, whose kritarc holds the server URL
and the settings and whose token file holds the token, so nothing here touches the docker's widgets (it
only reads whether a run is still going). Once the window is up it records Filter > NoiseBrush, then:
1. one layer "Sky" with a selection; triggers the action noisebrush_sdedit; checks the result; one
   edit_undo; records the layer stack (names and pixels) before and after;
2. a second image with layers "A" and "B", both selected; the same again (a batch).
Writes NB_PROBE_OUT (JSON) and leaves Krita at once.
"""

import hashlib
import json
import os
import traceback

from krita import Extension, Krita, Selection

try:
    from PyQt6.QtCore import QTimer
except ImportError:
    from PyQt5.QtCore import QTimer

W, H = 64, 48
SEL = (16, 12, 24, 16)
PREVIEW = "NoiseBrush preview"


def _pixels(seed):
    return bytes((i * 7 + (i // 4) * (13 + seed)) % 256 if i % 4 != 3 else 255 for i in range(W * H * 4))


def _stack(doc):
    """Every layer, bottom to top, as (name, sha1 of its pixels)."""
    out = []

    def walk(node):
        for child in node.childNodes():
            out.append([child.name(), hashlib.sha1(bytes(child.pixelData(0, 0, W, H))).hexdigest()[:12]])
            walk(child)

    walk(doc.rootNode())
    return out


def _outside_inside(src, out):
    x0, y0, w, h = SEL
    same, changed = True, 0
    for y in range(H):
        for x in range(W):
            i = (y * W + x) * 4
            if x0 <= x < x0 + w and y0 <= y < y0 + h:
                changed += out[i : i + 4] != src[i : i + 4]
            elif out[i : i + 4] != src[i : i + 4]:
                same = False
    return same, changed


class Probe(Extension):
    def setup(self):
        self.out = {}
        self.ticks = 0

    def createActions(self, window):
        QTimer.singleShot(3000, self.start)

    def start(self):
        try:
            app = Krita.instance()
            self.docker = next(d for d in app.dockers() if d.objectName() == "noisebrush_docker")
            self.doc = app.createDocument(W, H, "probe", "RGBA", "U8", "", 72.0)
            app.activeWindow().addView(self.doc)
            self.src = {"Sky": self.layer("Sky", 0, None)}
            self.doc.setActiveNode(self.doc.nodeByName("Sky"))
            sel = Selection()
            sel.select(*SEL, 255)
            self.doc.setSelection(sel)
            self.doc.waitForDone()
            self.run("single", self.batch)
        except Exception:
            self.fail()

    def batch(self):
        try:
            # A second image holding only A and B, both selected by Select > Select All Layers (Krita
            # 5.1's View cannot set the selected layers, and the Layers docker's model lags behind).
            self.doc.setModified(False)
            app = Krita.instance()
            self.doc = app.createDocument(W, H, "batch", "RGBA", "U8", "", 72.0)
            app.activeWindow().addView(self.doc)
            background = self.doc.rootNode().childNodes()[0]
            background.setName("A")
            self.src = {"A": _pixels(1)}
            background.setPixelData(self.src["A"], 0, 0, W, H)
            self.src["B"] = self.layer("B", 2, background)
            sel = Selection()
            sel.select(*SEL, 255)
            self.doc.setSelection(sel)
            self.doc.waitForDone()
            QTimer.singleShot(1500, self.batch_selected)  # the Layers docker catches up in the event loop
        except Exception:
            self.fail()

    def batch_selected(self):
        try:
            Krita.instance().action("select_all_layers").trigger()
            self.doc.waitForDone()
            view = Krita.instance().activeWindow().activeView()
            self.out["selected"] = sorted(n.name() for n in view.selectedNodes())
            self.run("batch", self.finish)
        except Exception:
            self.fail()

    # -- one generation through the Filter menu action, then one Undo --------------------------------
    def run(self, name, then):
        self.doc.waitForDone()
        self.name, self.then, self.ticks = name, then, 0
        self.out[name] = {"before": _stack(self.doc)}
        Krita.instance().action("noisebrush_sdedit").trigger()
        self.out[name]["started"] = self.docker._worker is not None
        QTimer.singleShot(200, self.wait)

    def wait(self):
        self.ticks += 1
        if self.docker._worker is not None and self.ticks < 1500:
            QTimer.singleShot(200, self.wait)
            return
        try:
            rec = self.out[self.name]
            rec["status"] = self.docker.status.text()
            rec["after"] = _stack(self.doc)
            rec["results"] = {}
            for src_name, src in self.src.items():
                made = self.doc.nodeByName(f"{src_name} (SDEdit)")
                if made is not None:
                    rec["results"][src_name] = _outside_inside(src, bytes(made.pixelData(0, 0, W, H)))
            Krita.instance().action("edit_undo").trigger()
            self.doc.waitForDone()
            rec["after_one_undo"] = _stack(self.doc)
            self.then()
        except Exception:
            self.fail()

    # -- helpers ------------------------------------------------------------------------------------
    def layer(self, name, seed, below):
        node = self.doc.createNode(name, "paintlayer")
        self.doc.rootNode().addChildNode(node, below)
        px = _pixels(seed)
        node.setPixelData(px, 0, 0, W, H)
        self.doc.waitForDone()
        return px

    def filter_submenu(self):
        bar = Krita.instance().activeWindow().qwindow().menuBar()
        self.out["menubar"] = [[a.objectName(), a.menu() and a.menu().objectName()] for a in bar.actions()]
        top = next(a for a in bar.actions() if a.menu() is not None and a.objectName().lower() == "filter")
        top.menu().aboutToShow.emit()  # as when the painter opens it
        self.out["filter_menu"] = [[a.text(), a.objectName()] for a in top.menu().actions()]
        sub = next((a for a in top.menu().actions() if a.text().replace("&", "") == "NoiseBrush"), None)
        if sub is None or sub.menu() is None:
            return None
        return [[a.text().replace("&", ""), a.objectName()] for a in sub.menu().actions()]

    def fail(self):
        self.out["error"] = traceback.format_exc()
        self.finish()

    def finish(self):
        try:
            self.out["menu"] = self.filter_submenu()
        except Exception:
            self.out["error"] = traceback.format_exc()
        with open(os.environ["NB_PROBE_OUT"], "w") as f:
            json.dump(self.out, f)
        os._exit(0)  # the report is written; a save-changes prompt must not hold the test up


Krita.instance().addExtension(Probe(Krita.instance()))
