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
