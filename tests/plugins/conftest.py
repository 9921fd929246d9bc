"""Plugin modules imported the way their hosts import them, from installed copies: Krita's as a package out
of a pykrita folder, GIMP's from its plug-in folder.

The install happens when this file loads (test modules import the plugins at collection time), with the
same `install_krita`/`install_gimp` that `noisebrush install-plugin` runs, so the shared modules of
plugin/shared are where the hosts find them. The folder goes away when the test process exits.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from noisebrush.core.cli.install_plugin import install_gimp, install_krita

REPO = Path(__file__).resolve().parents[2]
INSTALLED = Path(tempfile.mkdtemp(prefix="nb-plugins-"))
atexit.register(shutil.rmtree, INSTALLED, ignore_errors=True)
KRITA_PKG = install_krita(INSTALLED / "pykrita")  # .../pykrita/noisebrush_krita
GIMP_DIR = install_gimp(INSTALLED / "plug-ins")  # .../plug-ins/noisebrush-gimp
for p in (KRITA_PKG.parent, GIMP_DIR, REPO / "tests" / "server"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture(scope="session")
def installed_plugins() -> tuple[Path, Path]:
    """(installed Krita package, installed GIMP plug-in folder) that the plugin tests import from."""
    return KRITA_PKG, GIMP_DIR
