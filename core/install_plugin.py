"""Copy the host plugins out of the package into Krita's or GIMP's plugin folder, or zip Krita's."""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

from .errors import BadInput

KRITA_NAME = "noisebrush_krita"
GIMP_NAME = "noisebrush-gimp"


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


def _copy_tree(src: Path, dest: Path) -> None:
    if not src.is_dir():
        raise BadInput(f"plugin sources not found at {src}; is NoiseBrush installed with its plugin/ folder?")
    if dest.exists():
        shutil.rmtree(dest)
    for f in _files(src):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def install_krita(dest: Path | None = None) -> Path:
    """Copy noisebrush_krita/ and its .desktop file into `dest` (default: Krita's pykrita folder)."""
    src = plugin_root() / "krita"
    dest = dest or krita_pykrita_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(src / KRITA_NAME, dest / KRITA_NAME)
    shutil.copy2(src / f"{KRITA_NAME}.desktop", dest / f"{KRITA_NAME}.desktop")
    return dest / KRITA_NAME


def build_krita_zip(out: Path) -> Path:
    """A zip for Krita's Tools > Scripts > Import Python Plugin from File (desktop file + package at top)."""
    src = plugin_root() / "krita"
    if not (src / KRITA_NAME).is_dir():
        raise BadInput(f"plugin sources not found at {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(src / f"{KRITA_NAME}.desktop", f"{KRITA_NAME}.desktop")
        for f in _files(src / KRITA_NAME):
            z.write(f, f"{KRITA_NAME}/{f.relative_to(src / KRITA_NAME).as_posix()}")
    return out


def install_gimp(dest: Path | None = None) -> Path:
    """Copy noisebrush-gimp/ into `dest` (default: GIMP 3's plug-ins folder); the entry script is made executable."""
    src = plugin_root() / "gimp" / GIMP_NAME
    dest = dest or gimp_plugins_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(src, dest / GIMP_NAME)
    entry = dest / GIMP_NAME / f"{GIMP_NAME}.py"
    entry.chmod(0o755)
    return dest / GIMP_NAME
