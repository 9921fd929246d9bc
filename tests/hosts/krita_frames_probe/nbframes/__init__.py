"""A throwaway Krita plugin, enabled by tests/hosts/test_krita_frames.py in a full Krita window: an animated
paint layer with keyframes at 0, 4 and 8 (made with the Animation Timeline's add_blank_frame action, the one
way 5.1.5 has to make a keyframe), then noisebrush_krita.generate.generate_frames over it with a selection.
Writes NB_PROBE_OUT (JSON): per frame of the result layer, whether pixels outside the selection are the
source's and how many inside changed; and leaves Krita at once.
"""

import json
import os
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
            self.run()
        except Exception:
            self.out["error"] = traceback.format_exc()
        with open(os.environ["NB_PROBE_OUT"], "w") as f:
            json.dump(self.out, f)
        os._exit(0)  # the report is written; a save-changes prompt must not hold the test up

    def run(self):
        from noisebrush_krita.generate import generate_frames
        from noisebrush_krita.nb_client import Client
        from noisebrush_krita.nb_edit import Settings

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
        self.out["source_keyframes"] = [t for t in range(11) if node.hasKeyframeAtTime(t)]
        settings = Settings(kind="sdedit", strength=0.6, steps=int(os.environ["NB_STEPS"]), seed=1)
        progress = []
        client = Client(os.environ["NB_URL"], os.environ["NB_TOKEN"])
        out = generate_frames(doc, node, settings, client, lambda i, s, t: progress.append([i, s, t]))
        self.out["name"] = out.name()
        self.out["layers"] = [n.name() for n in doc.rootNode().childNodes()]
        self.out["result_keyframes"] = [t for t in range(11) if out.hasKeyframeAtTime(t)]
        self.out["current_time"] = doc.currentTime()
        self.out["frames"] = {}
        for t in TIMES:
            src, res = bytes(node.pixelDataAtTime(0, 0, W, H, t)), bytes(out.pixelDataAtTime(0, 0, W, H, t))
            self.out["frames"][str(t)] = [src == _frame(t), *_compare(src, res)]
        self.out["progress_frames"] = sorted({i for i, _, _ in progress})


Krita.instance().addExtension(Probe(Krita.instance()))
