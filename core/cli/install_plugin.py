"""Copy the host plugins out of the package into Krita's or GIMP's plugin folder, or zip Krita's.

Each installed plugin gets its own copy of the host-neutral modules in plugin/shared (nb_client, nb_png,
nb_edit, nb_jobs): Krita imports them from its package, GIMP from beside its entry script.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

from noisebrush.core.errors import BadInput

KRITA_NAME = "noisebrush_krita"
GIMP_NAME = "noisebrush-gimp"
SHARED_NAME = "shared"  # plugin/shared: host-neutral modules copied into every installed plugin


def plugin_root() -> Path:
    """The `plugin/` folder of this installation."""
    import noisebrush.plugin

    return Path(noisebrush.plugin.__file__).resolve().parent


def _app_data() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def krita_pykrita_dir() -> Path:
    """Krita's per-user Python plugin folder (~/.local/share/krita/pykrita on Linux)."""
    return _app_data() / "krita" / "pykrita"


def gimp_plugins_dir() -> Path:
    """GIMP 3's per-user plug-in folder (~/.config/GIMP/3.0/plug-ins on Linux)."""
    if sys.platform in ("win32", "darwin"):
        base = _app_data()
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "GIMP" / "3.0" / "plug-ins"


def _files(src: Path) -> list[Path]:
    return sorted(
        p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _sources(own: Path) -> list[tuple[str, Path]]:
    """What an installed plugin holds: the files of its own folder `own` plus the host-neutral modules of
    plugin/shared beside them, as (path inside the installed folder, source file), sorted. plugin/shared
    is the one source of those modules: it wins over a same-named file in `own` (say, a stale copy left in
    an old build folder); tests/plugins/test_plugin_plain.py keeps such copies out of the source tree."""
    shared = plugin_root() / SHARED_NAME
    found: dict[str, Path] = {}
    for src in (own, shared):
        files = _files(src) if src.is_dir() else []
        if not files:
            raise BadInput(
                f"plugin sources not found at {src}; is NoiseBrush installed with its plugin/ folder?"
            )
        found.update({f.relative_to(src).as_posix(): f for f in files})
    return sorted(found.items())


def _copy_plugin(own: Path, dest: Path) -> None:
    """A fresh `dest` holding the plugin folder `own` plus the shared modules."""
    files = _sources(own)
    if dest.exists():
        shutil.rmtree(dest)
    for rel, f in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def install_krita(dest: Path | None = None) -> Path:
    """Copy noisebrush_krita/ (with the shared modules) and its .desktop file into `dest` (default: Krita's
    pykrita folder)."""
    src = plugin_root() / "krita"
    dest = dest or krita_pykrita_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_plugin(src / KRITA_NAME, dest / KRITA_NAME)
    shutil.copy2(src / f"{KRITA_NAME}.desktop", dest / f"{KRITA_NAME}.desktop")
    return dest / KRITA_NAME


def build_krita_zip(out: Path) -> Path:
    """A zip for Krita's Tools > Scripts > Import Python Plugin from File (desktop file + package at top)."""
    src = plugin_root() / "krita"
    files = _sources(src / KRITA_NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(src / f"{KRITA_NAME}.desktop", f"{KRITA_NAME}.desktop")
        # Krita's importer finds the package by its folder entry ("noisebrush_krita/"), not by the files
        # in it: without one it says "No plugins found in archive".
        z.writestr(f"{KRITA_NAME}/", b"")
        for rel, f in files:
            z.write(f, f"{KRITA_NAME}/{rel}")
    return out


def install_gimp(dest: Path | None = None) -> Path:
    """Copy noisebrush-gimp/ (with the shared modules) into `dest` (default: GIMP 3's plug-ins folder); the
    entry script is made executable."""
    src = plugin_root() / "gimp" / GIMP_NAME
    dest = dest or gimp_plugins_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_plugin(src, dest / GIMP_NAME)
    entry = dest / GIMP_NAME / f"{GIMP_NAME}.py"
    entry.chmod(0o755)
    return dest / GIMP_NAME
