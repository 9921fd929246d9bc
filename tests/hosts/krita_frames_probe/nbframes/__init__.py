"""A throwaway Krita plugin, enabled by tests/hosts/test_krita_frames.py in a full Krita window: an animated
paint layer with keyframes at 0, 4 and 8 (made with the Animation Timeline's add_blank_frame action, the one
way 5.1.5 has to make a keyframe) and a selection; then the action noisebrush_sdedit_frames (Filter >
NoiseBrush > SDEdit Every Keyframe) triggered by name, with the settings, URL and token the test left in
kritarc and the token file and nothing done in the docker (the probe only reads whether its run is still
going); then noisebrush_krita.generate.generate_frames, the scripts' way, over the same layer.
Writes NB_PROBE_OUT (JSON): per frame of each result layer, whether pixels outside the selection are the
source's and how many inside changed; and leaves Krita at once.
"""

import json
import os
import time
import traceback

from krita import Extension, Krita, Selection

try:
    from PyQt6.QtCore import QByteArray, QTimer
    from PyQt6.QtWidgets import QApplication
except ImportError:
    from PyQt5.QtCore import QByteArray, QTimer
    from PyQt5.QtWidgets import QApplication

W, H = 64, 48
SEL = (8, 8, 40, 24)
TIMES = (0, 4, 8)


def _frame(t):
    """BGRA: a static grey ramp with a square that moves with t."""
    px = bytearray()
    for y in range(H):
        for x in range(W):
            v = (x * 3 + y * 2) % 256
            inside = 10 + 6 * t <= x < 22 + 6 * t and 14 <= y < 26
            px += bytes((200, 40, 40, 255)) if inside else bytes((v, v, v, 255))
    return bytes(px)


def _compare(src, out):
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


def settle(doc):
    doc.waitForDone()
    QApplication.processEvents()


class Probe(Extension):
    def setup(self):
        self.out = {}

    def createActions(self, window):
        QTimer.singleShot(3000, self.start)

    def start(self):
        try:
            self.animate()
            self.trigger()
        except Exception:
            self.fail()

    def animate(self):
        app = Krita.instance()
        doc = app.createDocument(W, H, "frames", "RGBA", "U8", "", 72.0)
        app.activeWindow().addView(doc)
        node = doc.createNode("Walk", "paintlayer")
        doc.rootNode().addChildNode(node, None)
        doc.setActiveNode(node)
        doc.setFullClipRangeEndTime(10)
        settle(doc)  # the timeline's actions act on the active layer once the view has heard of it
        node.enableAnimation()
        settle(doc)
        for t in TIMES:
            doc.setCurrentTime(t)
            settle(doc)
            app.action("add_blank_frame").trigger()
            settle(doc)
            node.setPixelData(QByteArray(_frame(t)), 0, 0, W, H)
            settle(doc)
        sel = Selection()
        sel.select(*SEL, 255)
        doc.setSelection(sel)
        doc.setCurrentTime(2)
        doc.waitForDone()
        self.doc, self.node = doc, node
        self.out["source_keyframes"] = [t for t in range(11) if node.hasKeyframeAtTime(t)]

    # -- the painter's way: the Filter menu's action, by name --------------------------------------
    def trigger(self):
        app = Krita.instance()
        self.docker = next(d for d in app.dockers() if d.objectName() == "noisebrush_docker")
        self.messages = []
        app.activeWindow().qwindow().statusBar().messageChanged.connect(self.messages.append)
        t0 = time.monotonic()
        app.action("noisebrush_sdedit_frames").trigger()
        rec = self.out["action"] = {"trigger_s": time.monotonic() - t0}
        rec["started"] = self.docker._worker is not None  # the batch runs on the docker's worker thread
        rec["layers_while_running"] = [n.name() for n in self.doc.rootNode().childNodes()]
        self.ticks = 0
        QTimer.singleShot(200, self.wait)

    def wait(self):
        self.ticks += 1
        if self.docker._worker is not None and self.ticks < 2500:
            QTimer.singleShot(200, self.wait)
            return
        try:
            rec = self.out["action"]
            rec["status"] = self.docker.status.text()
            rec["messages"] = list(self.messages)
            out = self.doc.nodeByName("Walk (SDEdit)")
            self.record(rec, out)
            self.script(out)
        except Exception:
            self.fail()

    # -- the scripts' way: generate_frames, blocking, in this thread --------------------------------
    def script(self, first):
        from noisebrush_krita.generate import generate_frames
        from noisebrush_krita.nb_client import Client
        from noisebrush_krita.nb_edit import Settings

        settings = Settings(kind="sdedit", strength=0.6, steps=int(os.environ["NB_STEPS"]), seed=1)
        progress = []
        client = Client(os.environ["NB_URL"], os.environ["NB_TOKEN"])
        self.doc.setCurrentTime(2)
        self.doc.waitForDone()
        out = generate_frames(
            self.doc, self.node, settings, client, lambda i, s, t: progress.append([i, s, t])
        )
        rec = self.out["script"] = {"progress_frames": sorted({i for i, _, _ in progress})}
        self.record(rec, out)
        rec["same_as_action"] = {
            str(t): bytes(out.pixelDataAtTime(0, 0, W, H, t)) == bytes(first.pixelDataAtTime(0, 0, W, H, t))
            for t in TIMES
        }
        self.finish()

    def record(self, rec, out):
        rec["layers"] = [n.name() for n in self.doc.rootNode().childNodes()]
        rec["current_time"] = self.doc.currentTime()
        if out is None:
            return
        rec["name"] = out.name()
        rec["result_keyframes"] = [t for t in range(11) if out.hasKeyframeAtTime(t)]
        rec["frames"] = {}
        for t in TIMES:
            src = bytes(self.node.pixelDataAtTime(0, 0, W, H, t))
            res = bytes(out.pixelDataAtTime(0, 0, W, H, t))
            rec["frames"][str(t)] = [src == _frame(t), *_compare(src, res)]

    def fail(self):
        self.out["error"] = traceback.format_exc()
        self.finish()

    def finish(self):
        with open(os.environ["NB_PROBE_OUT"], "w") as f:
            json.dump(self.out, f)
        os._exit(0)  # the report is written; a save-changes prompt must not hold the test up


Krita.instance().addExtension(Probe(Krita.instance()))
