"""A throwaway Krita plugin that tests the installed NoiseBrush plugin from inside a full Krita window.

Enabled next to noisebrush_krita by tests/hosts/test_krita_install.py. Once the window is up it looks
for the Filter menu actions and the docker, opens a document, triggers Filter > SDEdit..., presses the
docker's Generate against NB_URL/NB_TOKEN, waits, writes NB_PROBE_OUT (JSON) and quits Krita.
"""

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


class Probe(Extension):
    def setup(self):
        self.out = {"menus": {}}
        self.ticks = 0

    def createActions(self, window):
        QTimer.singleShot(3000, self.start)

    def start(self):
        app = Krita.instance()
        try:
            qwin = app.activeWindow().qwindow()
            for a in qwin.menuBar().actions():
                m = a.menu()
                hits = [x.text() for x in m.actions() if "noisebrush" in x.objectName()] if m else []
                if hits:
                    self.out["menus"][a.objectName() or a.text().replace("&", "")] = hits
            self.docker = next(d for d in app.dockers() if d.objectName() == "noisebrush_docker")
            self.doc = app.createDocument(W, H, "probe", "RGBA", "U8", "", 72.0)
            app.activeWindow().addView(self.doc)
            node = self.doc.createNode("Sky", "paintlayer")
            self.doc.rootNode().addChildNode(node, None)
            self.src = bytes((i * 7 + (i // 4) * 13) % 256 if i % 4 != 3 else 255 for i in range(W * H * 4))
            node.setPixelData(self.src, 0, 0, W, H)
            self.doc.setActiveNode(node)
            sel = Selection()
            sel.select(*SEL, 255)
            self.doc.setSelection(sel)
            self.doc.waitForDone()
            app.action("noisebrush_ledits").trigger()
            self.out["kind_after_ledits_action"] = self.docker.kind.currentData()
            app.action("noisebrush_sdedit").trigger()
            self.out["kind_after_sdedit_action"] = self.docker.kind.currentData()
            self.docker.url.setText(os.environ["NB_URL"])
            self.docker.token.setText(os.environ["NB_TOKEN"])
            self.docker.steps.setValue(int(os.environ.get("NB_STEPS", "0")))
            self.docker.generate_btn.click()
            QTimer.singleShot(200, self.wait)
        except Exception:
            self.out["error"] = traceback.format_exc()
            self.finish()

    def wait(self):
        self.ticks += 1
        if self.docker._worker is not None and self.ticks < 1500:
            QTimer.singleShot(200, self.wait)
            return
        try:
            self.out["status"] = self.docker.status.text()
            self.out["order"] = [n.name() for n in self.doc.rootNode().childNodes()]
            made = self.doc.nodeByName("Sky (SDEdit)")
            if made is not None:
                out = bytes(made.pixelData(0, 0, W, H))
                x0, y0, w, h = SEL
                same, changed = True, 0
                for y in range(H):
                    for x in range(W):
                        i = (y * W + x) * 4
                        if x0 <= x < x0 + w and y0 <= y < y0 + h:
                            changed += out[i : i + 4] != self.src[i : i + 4]
                        elif out[i : i + 4] != self.src[i : i + 4]:
                            same = False
                self.out["outside_equal"], self.out["changed_inside"] = same, changed
            Krita.instance().action("edit_undo").trigger()
            self.doc.waitForDone()
            self.out["after_undo"] = [n.name() for n in self.doc.rootNode().childNodes()]
            Krita.instance().action("edit_undo").trigger()
            self.doc.waitForDone()
            self.out["after_undo2"] = [n.name() for n in self.doc.rootNode().childNodes()]
        except Exception:
            self.out["error"] = traceback.format_exc()
        self.finish()

    def finish(self):
        with open(os.environ["NB_PROBE_OUT"], "w") as f:
            json.dump(self.out, f)
        try:
            self.doc.setModified(False)
        except Exception:
            pass
        Krita.instance().action("file_quit").trigger()


Krita.instance().addExtension(Probe(Krita.instance()))
