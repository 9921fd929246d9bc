"""Plugin modules imported the way their hosts import them: Krita's as a package, GIMP's from its folder."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KRITA_DIR = REPO / "plugin" / "krita"
GIMP_DIR = REPO / "plugin" / "gimp" / "noisebrush-gimp"
for p in (KRITA_DIR, GIMP_DIR, REPO / "tests" / "server"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
