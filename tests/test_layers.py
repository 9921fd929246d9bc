"""The house's rules, checked on the code itself: the layers of docs/ARCHITECTURE.md (import-linter
contracts in pyproject.toml) and one idea per module (none under core/ passes 400 lines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (bin/setup installs it with the test extras)")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_core_module_passes_400_lines():
    long = {
        str(path.relative_to(REPO)): n
        for path in sorted((REPO / "core").rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their ideas: {long}"


def test_every_subpackage_says_what_it_is_and_may_import():
    for init in [
        *(REPO / "core").rglob("__init__.py"),
        *(REPO / "gui").rglob("__init__.py"),
        REPO / "bench" / "__init__.py",
    ]:
        doc = init.read_text(encoding="utf-8")
        assert doc.startswith('"""') and "import" in doc, (
            f"{init.relative_to(REPO)} needs a docstring with its imports"
        )


def test_the_painting_model_works_with_qt_unimportable(tmp_path):
    """gui/model is a model of its own: with PyQt6 blocked, a document's layers round-trip through OpenRaster."""
    probe = f"""
import sys
sys.modules["PyQt6"] = None  # any Qt import now fails
import numpy as np
from noisebrush.gui.model.layer import Layer
from noisebrush.gui.model.ora import read_ora, write_ora
from noisebrush.gui.model.pixels import composite
rng = np.random.default_rng(0)
layers = [Layer("paper", rng.integers(0, 256, (16, 24, 4), dtype=np.uint8)),
          Layer("paint", rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), 3, 4, blend="svg:multiply")]
write_ora({str(tmp_path / "doc.ora")!r}, 24, 16, layers)
w, h, back = read_ora({str(tmp_path / "doc.ora")!r})
assert (w, h) == (24, 16) and [la.blend for la in back] == ["svg:src-over", "svg:multiply"]
assert (composite(back, (0, 0, 24, 16)) == composite(layers, (0, 0, 24, 16))).all()
print("qt loaded:", any(m.startswith("PyQt6.") for m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "qt loaded: False"
