"""Marching ants: the selection outline is traced right, moves, and costs nothing without a selection."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, QPointF, QRect
from PyQt6.QtGui import QRegion

from noisebrush.gui.ants import TILE, chain, outline_segments


def _unit_edges(segments: np.ndarray) -> set[tuple[int, int, int, int]]:
    """Each segment as the unit pixel edges it covers, with its direction."""
    out = set()
    for x0, y0, x1, y1 in segments.tolist():
        n = abs(x1 - x0) + abs(y1 - y0)
        dx, dy = (x1 - x0) // n, (y1 - y0) // n
        out |= {(x0 + k * dx, y0 + k * dy, dx, dy) for k in range(n)}
    return out


def test_outline_follows_the_pixel_edges_clockwise_and_tiles_add_up_to_the_whole():
    rng = np.random.default_rng(3)
    mask = np.zeros((300, 520), np.uint8)
    mask[40:200, 30:400] = 255
    mask[100:300, 350:520] = 200  # soft but over half: selected, and touching two borders
    mask[rng.random(mask.shape) < 0.01] ^= 255  # holes and specks
    mask[60:70, 60:70] = 127  # under half: not selected
    inside = mask >= 128
    whole = _unit_edges(outline_segments(mask, (0, 0, 520, 300)))
    tiled = set()
    for ty in range(0, 300, TILE):
        for tx in range(0, 520, TILE):
            piece = _unit_edges(outline_segments(mask, (tx, ty, TILE, TILE)))
            assert not piece & tiled  # every edge belongs to exactly one tile
            tiled |= piece
    assert tiled == whole
    padded = np.pad(inside, 1)
    expected = int((padded[1:, :] != padded[:-1, :]).sum() + (padded[:, 1:] != padded[:, :-1]).sum())
    assert len(whole) == expected
    for x, y, dx, dy in whole:  # the selected pixel lies on the right-hand side of the direction
        px, py = {(1, 0): (x, y), (-1, 0): (x - 1, y - 1), (0, 1): (x - 1, y), (0, -1): (x, y - 1)}[(dx, dy)]
        assert padded[py + 1, px + 1], (x, y, dx, dy)


def test_chains_are_continuous_and_closed_loops_close():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:8, 3:9] = 255
    mask[8:12, 9:15] = 255  # touches the first square at a corner only
    lines = chain(outline_segments(mask, (0, 0, 20, 20)))
    for line in lines:
        assert line[0] == line[-1]  # whole shapes inside one tile are loops
        for (ax, ay), (bx, by) in zip(line, line[1:], strict=False):
            assert ax == bx or ay == by
    total = sum(
        abs(bx - ax) + abs(by - ay)
        for line in lines
        for (ax, ay), (bx, by) in zip(line, line[1:], strict=False)
    )
    assert total == 2 * (6 + 6) + 2 * (4 + 6)


def _new(window, w: int = 400, h: int = 300) -> None:
    window.doc.new(w, h)
    window.canvas.set_scale(1.0)
    window.canvas.origin = QPointF(10, 10)


def test_ants_march_only_while_something_is_selected(qtbot, window):
    _new(window)
    ants = window.canvas.ants
    qtbot.wait(50)
    assert not ants.timer.isActive()
    window.tool_objects["rect"].select([(20, 20), (120, 90)], "replace")
    qtbot.waitUntil(ants.timer.isActive, timeout=1000)
    phase = ants.phase
    qtbot.waitUntil(lambda: ants.phase != phase, timeout=2000)
    window.deselect()
    qtbot.waitUntil(lambda: not ants.timer.isActive(), timeout=1000)
    window.doc.undo_stack.undo()  # the selection is back
    qtbot.waitUntil(ants.timer.isActive, timeout=1000)
    window.doc.new(64, 64)
    qtbot.waitUntil(lambda: not ants.timer.isActive(), timeout=1000)


def test_a_step_repaints_only_around_the_outline(qtbot, window, monkeypatch):
    _new(window, 1200, 900)
    window.canvas.set_scale(0.5)
    window.canvas.origin = QPointF(5, 5)
    window.tool_objects["rect"].select([(100, 100), (1100, 800)], "replace")
    qtbot.waitUntil(window.canvas.ants.timer.isActive, timeout=1000)
    asked: list[QRegion] = []
    monkeypatch.setattr(window.canvas, "update", lambda *a: asked.append(QRegion(a[0]) if a else None))
    window.canvas.ants._step()
    assert len(asked) == 1 and asked[0] is not None
    region = asked[0]
    outline = QRect(5 + 50, 5 + 50, 500, 350)  # the selection in widget pixels
    assert outline.adjusted(-3, -3, 3, 3).contains(region.boundingRect())
    grid = [
        QPoint(x, y)
        for x in range(outline.left(), outline.right(), 2)
        for y in range(outline.top(), outline.bottom(), 2)
    ]
    covered = sum(region.contains(p) for p in grid) / len(grid)
    assert covered < 0.1  # strips along the edges, not the whole rectangle


def test_the_outline_is_drawn_in_moving_black_and_white_dashes(qtbot, window):
    _new(window)
    window.tool_objects["rect"].select([(50, 40), (250, 200)], "replace")
    qtbot.waitUntil(window.canvas.ants.timer.isActive, timeout=1000)
    window.canvas.ants.timer.stop()  # step by hand
    first = window.canvas.grab().toImage()
    window.canvas.ants._step()
    window.canvas.ants._step()
    second = window.canvas.grab().toImage()
    top = [first.pixelColor(10 + x, 10 + 40) for x in range(60, 240)]  # the selection's top edge
    values = {(c.red(), c.green(), c.blue()) for c in top}
    assert values == {(0, 0, 0), (255, 255, 255)}
    moved = sum(first.pixelColor(10 + x, 50) != second.pixelColor(10 + x, 50) for x in range(60, 240))
    assert moved > 60  # a step of two pixels changes about half the dash pixels
    assert first.pixelColor(10 + 150, 10 + 120) == second.pixelColor(10 + 150, 10 + 120)  # inside: still
