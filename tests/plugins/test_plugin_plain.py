"""The plugins' plain-Python modules: PNG codec, regions, job bodies, and that the shared ones live once in
plugin/shared and reach every installed plugin unchanged."""

from __future__ import annotations

import ast
import base64
import io
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from noisebrush_krita import nb_edit, nb_png
from PIL import Image

from noisebrush.core.cli import install_plugin
from noisebrush.core.cli.install_plugin import KRITA_NAME, build_krita_zip
from noisebrush.core.engine.images import encode_png
from noisebrush.core.errors import BadInput
from noisebrush.core.server import wire

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugin"
SHARED_DIR = PLUGIN / "shared"
KRITA_SRC = PLUGIN / "krita" / "noisebrush_krita"
GIMP_SRC = PLUGIN / "gimp" / "noisebrush-gimp"
SHARED = ("nb_client.py", "nb_png.py", "nb_edit.py", "nb_jobs.py")


def _shared_modules() -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in SHARED_DIR.glob("*.py")}
    assert set(SHARED) <= set(found), f"plugin/shared lacks {sorted(set(SHARED) - set(found))}"
    return found


def test_installed_plugins_carry_the_shared_modules_unchanged(
    installed_plugins: tuple[Path, Path], tmp_path: Path
) -> None:
    krita_pkg, gimp_dir = installed_plugins
    zipped = zipfile.ZipFile(build_krita_zip(tmp_path / "nb.zip"))
    for name, data in _shared_modules().items():
        assert (krita_pkg / name).read_bytes() == data, f"installed Krita package: {name} differs"
        assert zipped.read(f"{KRITA_NAME}/{name}") == data, f"Krita zip: {name} differs"
        assert (gimp_dir / name).read_bytes() == data, f"installed GIMP plug-in: {name} differs"


def test_shared_modules_live_only_in_plugin_shared() -> None:
    shared = _shared_modules()
    contents = set(shared.values())
    for path in PLUGIN.rglob("*.py"):
        if path.parent == SHARED_DIR or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(REPO)
        assert path.name not in shared, f"{rel} duplicates plugin/shared/{path.name}: keep one copy"
        assert path.read_bytes() not in contents, f"{rel} is a copy of a module in plugin/shared"


def test_install_needs_plugin_shared_and_takes_the_modules_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "plugin"
    shutil.copytree(PLUGIN, fake, ignore=shutil.ignore_patterns("__pycache__", "shared"))
    monkeypatch.setattr(install_plugin, "plugin_root", lambda: fake)
    with pytest.raises(BadInput, match="plugin sources not found at .*shared"):
        install_plugin.install_gimp(tmp_path / "out")
    with pytest.raises(BadInput, match="plugin sources not found at .*shared"):
        install_plugin.build_krita_zip(tmp_path / "nb.zip")
    shutil.copytree(SHARED_DIR, fake / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    (fake / "krita" / KRITA_NAME / "nb_png.py").write_text("stale = True\n")  # e.g. left in build/lib
    pkg = install_plugin.install_krita(tmp_path / "pykrita")
    assert (pkg / "nb_png.py").read_bytes() == (SHARED_DIR / "nb_png.py").read_bytes()
    assert (pkg / "docker.py").is_file()


def test_shared_modules_import_both_ways(installed_plugins: tuple[Path, Path]) -> None:
    """Krita imports them relative to its package, GIMP at top level; nb_jobs picks the matching nb_png."""
    import nb_jobs
    import noisebrush_krita.nb_jobs as krita_jobs

    krita_pkg, gimp_dir = installed_plugins
    assert Path(krita_jobs.__file__).parent == krita_pkg
    assert krita_jobs.nb_png is sys.modules["noisebrush_krita.nb_png"]
    assert Path(nb_jobs.__file__).parent == gimp_dir
    assert nb_jobs.nb_png is sys.modules["nb_png"] and Path(nb_jobs.nb_png.__file__).parent == gimp_dir


def test_plugins_use_only_stdlib_and_host_modules() -> None:
    """Host code may import its host; plugin/shared is host-neutral: stdlib and its own modules only."""
    stdlib = set(sys.stdlib_module_names)
    shared = {p.stem for p in SHARED_DIR.glob("*.py")}
    hosts = {"krita", "gi", "PyQt5", "PyQt6", "noisebrush_krita"}
    local = shared | {p.stem for p in KRITA_SRC.glob("*.py")} | {p.stem for p in GIMP_SRC.glob("*.py")}
    for folder, allowed in (
        (SHARED_DIR, stdlib | shared),
        (KRITA_SRC, stdlib | hosts | local),
        (GIMP_SRC, stdlib | hosts | local),
    ):
        for path in folder.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for n in names:
                    assert n.split(".")[0] in allowed, (
                        f"{path.relative_to(REPO)} imports {n}: plugins may use only stdlib + host"
                        + (" (and plugin/shared none of the hosts)" if folder == SHARED_DIR else "")
                    )


@pytest.mark.parametrize("shape", [(9, 7, 3), (9, 7, 4), (9, 7), (1, 1, 4)])
def test_png_round_trips_with_pillow(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    c = 1 if a.ndim == 2 else a.shape[2]
    ours = nb_png.encode(a.shape[1], a.shape[0], c, a.tobytes())
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(ours))), a)
    for optimize in (False, True):  # Pillow writes filtered rows: every filter type gets exercised
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG", optimize=optimize)
        w, h, ch, px = nb_png.decode(buf.getvalue())
        assert (w, h, ch) == (a.shape[1], a.shape[0], c) and px == a.tobytes()
    w, h, ch, px = nb_png.decode(base64.b64decode(encode_png(a)))
    assert px == a.tobytes()


def test_png_palette_and_errors() -> None:
    img = Image.new("P", (4, 3))
    img.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    img.putpixel((1, 1), 1)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    w, h, c, px = nb_png.decode(buf.getvalue())
    assert c == 3 and px[:3] == bytes([10, 20, 30]) and px[15:18] == bytes([40, 50, 60])
    with pytest.raises(nb_png.PNGError):
        nb_png.decode(b"GIF89a")
    with pytest.raises(nb_png.PNGError):
        nb_png.encode(2, 2, 3, b"\x00" * 5)


def test_regions_and_masks() -> None:
    assert nb_edit.region(None, (0, 0, 50, 40), 64) == (0, 0, 50, 40)
    assert nb_edit.region((100, 100, 10, 10), (0, 0, 500, 400), 8) == (92, 92, 26, 26)
    assert nb_edit.region((0, 0, 10, 10), (0, 0, 500, 400), 8) == (0, 0, 18, 18)
    assert nb_edit.grow_to((5, 5, 2, 2), (0, 0, 100, 100)) == (2, 2, 8, 8)
    assert nb_edit.bounds_of_mask(b"\x00\x00\x00\x00\x07\x00", 3, 2) == (1, 1, 1, 1)
    assert nb_edit.bounds_of_mask(b"\x00" * 6, 3, 2) is None
    src, out = bytes(range(16)), bytes(range(100, 116))
    kept = nb_edit.keep_unselected(src, out, b"\x00\xff\x80\x00")
    assert kept == src[:4] + out[4:12] + src[12:]
    assert nb_edit.swap_red_blue(b"\x01\x02\x03\x04") == b"\x03\x02\x01\x04"
    assert nb_edit.to_rgba(b"\x01\x02\x03", 3) == b"\x01\x02\x03\xff"
    assert nb_edit.to_rgba(b"\x05\x09", 2) == b"\x05\x05\x05\x09"
    img = bytes(range(4 * 4 * 4))
    assert nb_edit.crop(img, 4, (1, 2, 2, 1)) == img[(2 * 4 + 1) * 4 : (2 * 4 + 3) * 4]


def test_concepts_and_names() -> None:
    assert nb_edit.parse_concepts("cat, -hat ; +sky,,") == [
        {"text": "cat", "remove": False},
        {"text": "hat", "remove": True},
        {"text": "sky", "remove": False},
    ]
    assert nb_edit.result_name("Sky", "sdedit", 0, 1) == "Sky (SDEdit)"
    assert nb_edit.result_name("Sky", "ledits", 1, 3) == "Sky (LEDITS 2)"


@pytest.mark.parametrize("kind", ["sdedit", "ledits"])
def test_job_body_is_what_the_server_accepts(kind: str) -> None:
    """The plugin's body goes through the server's own parsing and validation unchanged."""
    img = np.random.default_rng(1).integers(0, 256, (12, 10, 4), dtype=np.uint8)
    mask = np.zeros((12, 10), np.uint8)
    mask[2:6, 3:7] = 255
    settings = nb_edit.Settings(
        kind=kind, steps=12, seed=4, prompt="a hill", concepts="tree, -house", variations=2
    )
    body = nb_edit.job_body(
        settings, nb_png.encode(10, 12, 4, img.tobytes()), nb_png.encode(10, 12, 1, mask.tobytes())
    )
    model = wire.SDEditJob if kind == "sdedit" else wire.LeditsJob
    got_kind, req = wire.to_request(model.model_validate(body), max_pixels=10_000)
    assert got_kind == kind and req.steps == 12 and req.seed == 4
    assert np.array_equal(req.guide if kind == "sdedit" else req.image, img)
    assert np.array_equal(req.mask > 0.5, mask > 0)
    if kind == "ledits":
        assert [(c.text, c.remove) for c in req.concepts] == [("tree", False), ("house", True)]
        assert req.target_prompt == "a hill"
    else:
        assert req.variations == 2 and req.prompt == "a hill"
