"""The package list in pyproject.toml names every folder that ships files, so installs stay quiet."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _shipped_folders() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for package, folder in config["package-dir"].items():
        for d in [ROOT / folder, *(ROOT / folder).rglob("*")]:
            if not d.is_dir() or d.name == "__pycache__" or not any(f.is_file() for f in d.rglob("*")):
                continue
            parts = d.relative_to(ROOT / folder).parts
            # setuptools skips folders whose names are not identifiers (plugin/gimp/noisebrush-gimp)
            if all(p.isidentifier() for p in parts):
                found.add(".".join((package, *parts)))
    return found


def test_every_shipped_folder_is_a_listed_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _shipped_folders()
