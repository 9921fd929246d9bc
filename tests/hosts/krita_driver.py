"""Runs inside Krita: `kritarunner -s krita_driver -f main URL TOKEN REPORT SCENARIO`.

Builds a document, runs the plugin's generate() against the server, and writes a JSON report of what
came out for tests/hosts/test_krita_host.py to judge. Uses nothing but Krita, its Qt and the plugin.
"""

from __future__ import annotations

import json
import random
import traceback

from krita import Krita, Selection
from noisebrush_krita import krita_host
from noisebrush_krita.generate import generate
from noisebrush_krita.nb_client import Client
from noisebrush_krita.nb_edit import Settings, swap_red_blue

W, H = 96, 80
SEL = (24, 16, 40, 32)  # x, y, w, h


def _layer(doc, name, seed):
    rnd = random.Random(seed)
    node = doc.createNode(name, "paintlayer")
    doc.rootNode().addChildNode(node, None)
    rgba = bytes(rnd.randrange(256) if i % 4 != 3 else 255 for i in range(W * H * 4))
    krita_host.write_rgba(node, (0, 0, W, H), rgba)
    return node, rgba


def _outside_equal(src: bytes, out: bytes) -> tuple[bool, int]:
    x0, y0, w, h = SEL
    same, changed_inside = True, 0
    for y in range(H):
        for x in range(W):
            i = (y * W + x) * 4
            inside = x0 <= x < x0 + w and y0 <= y < y0 + h
            if inside:
                changed_inside += src[i : i + 4] != out[i : i + 4]
            elif src[i : i + 4] != out[i : i + 4]:
                same = False
    return same, changed_inside


def _through_docker(doc, nodes, settings, url, token, report):
    """Drive the docker as a user would: its Generate button, its QThread worker, its preview layer."""
    from noisebrush_krita import docker as dk
    from noisebrush_krita.qtcompat import QT6

    if QT6:
        from PyQt6.QtCore import QCoreApplication, QEventLoop
    else:
        from PyQt5.QtCore import QCoreApplication, QEventLoop
    import time

    krita_host.active_document = lambda: doc  # no window in kritarunner, so no active view
    krita_host.selected_nodes = lambda d: nodes
    seen = []
    show = krita_host.show_preview

    def spy(d, source, box, rgba):
        seen.append(list(box))
        show(d, source, box, rgba)

    krita_host.show_preview = spy
    made_before = {n.name() for n in doc.rootNode().childNodes()}
    docker = dk.NoiseBrushDocker()
    docker.url.setText(url)
    docker.token.setText(token)
    docker.steps.setValue(settings.steps)
    docker.generate_btn.click()
    deadline = time.monotonic() + 300
    if report["scenario"] == "cancel":  # the user clicks Cancel once the first step is shown
        while not seen and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        report["bar_before_cancel"] = docker.bar.value()
        report["cancel_clicked_at"] = time.time()
        docker.cancel_btn.click()
        report["bar_after_cancel"] = docker.bar.value()
    while docker._worker is not None and time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    while docker._thread is not None and time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    report["status"] = docker.status.text()
    report["bar_at_end"], report["bar_minimum"] = docker.bar.value(), docker.bar.minimum()
    report["previews"] = seen
    return [n for n in doc.rootNode().childNodes() if n.name() not in made_before]


def main(args):
    url, token, report_path, scenario = args[:4]
    report = {"scenario": scenario}
    try:
        app = Krita.instance()
        doc = app.createDocument(W, H, "nb-test", "RGBA", "U8", "", 72.0)
        sources = [_layer(doc, f"Layer {i + 1}", i) for i in range(3 if scenario == "batch" else 1)]
        sel = Selection()
        sel.select(*SEL, 255)
        doc.setSelection(sel)
        doc.waitForDone()
        settings = Settings(kind="sdedit", strength=0.6, steps=int(args[4]) if len(args) > 4 else 0, seed=1)
        if scenario in ("docker", "cancel"):
            made = _through_docker(doc, [n for n, _ in sources], settings, url, token, report)
        else:
            made = generate(doc, [n for n, _ in sources], settings, Client(url, token))
        # bottom first; a group's name is followed by its children's (a batch's results share one group)
        report["order"] = [
            name
            for n in doc.rootNode().childNodes()
            for name in [n.name(), *(c.name() for c in n.childNodes() if n.type() == "grouplayer")]
        ]
        report["results"] = []
        for node in made:
            src_node, src = next((n, p) for n, p in sources if node.name().startswith(n.name() + " ("))
            out = swap_red_blue(bytes(node.pixelData(0, 0, W, H)))
            same, changed = _outside_equal(src, out)
            b = node.bounds()
            report["results"].append(
                {
                    "name": node.name(),
                    "source": src_node.name(),
                    "bounds": [b.x(), b.y(), b.width(), b.height()],
                    "outside_equal": same,
                    "changed_inside": changed,
                    "size": [doc.width(), doc.height()],
                }
            )
        report["preview_left"] = doc.nodeByName(krita_host.PREVIEW_NAME) is not None
        report["ok"] = True
    except Exception:
        report["ok"] = False
        report["error"] = traceback.format_exc()
    with open(report_path, "w") as f:
        json.dump(report, f)
