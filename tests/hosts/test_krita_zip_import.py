"""`noisebrush install-plugin krita --zip` read by Krita's own importer (Tools > Scripts > Import Python
Plugin from File runs /usr/share/krita/pykrita/plugin_importer/plugin_importer.py): it must find the plugin
and unpack exactly what `noisebrush install-plugin krita` installs, byte for byte."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from noisebrush.core.cli.install_plugin import KRITA_NAME, build_krita_zip, install_krita

pytestmark = pytest.mark.host
IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_krita_importer_unpacks_what_install_plugin_installs(tmp_path: Path) -> None:
    if not IMPORTER.exists():
        pytest.skip(f"Krita's plugin importer is not at {IMPORTER} (.ci/hosts.sh installs Krita 5)")
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", IMPORTER)
    assert spec is not None and spec.loader is not None
    importer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(importer)

    resources = tmp_path / "krita"  # Krita's resource folder: the importer writes resources/pykrita
    resources.mkdir()
    zipped = build_krita_zip(tmp_path / "noisebrush-krita.zip")
    imported = importer.PluginImporter(str(zipped), str(resources), lambda plugin: True).import_all()

    assert [p["name"] for p in imported] == [KRITA_NAME]
    installed = install_krita(tmp_path / "direct" / "pykrita").parent
    assert _tree(resources / "pykrita") == _tree(installed)
