"""The plugins' plain-Python modules: PNG codec, regions, job bodies, and that the copies stay one code."""

from __future__ import annotations

import ast
import base64
import io
from pathlib import Path

import numpy as np
import pytest
from noisebrush_krita import nb_edit, nb_png
from PIL import Image

from noisebrush.core import wire

REPO = Path(__file__).resolve().parents[2]
KRITA_DIR = REPO / "plugin" / "krita"
GIMP_DIR = REPO / "plugin" / "gimp" / "noisebrush-gimp"
SHARED = ("nb_client.py", "nb_png.py", "nb_edit.py", "nb_jobs.py")


@pytest.mark.parametrize("name", SHARED)
def test_shared_modules_are_identical_in_both_plugins(name: str) -> None:
    assert (KRITA_DIR / "noisebrush_krita" / name).read_bytes() == (GIMP_DIR / name).read_bytes(), (
        f"plugin/krita/noisebrush_krita/{name} and plugin/gimp/noisebrush-gimp/{name} differ: copy one over the other"
    )


def test_plugins_use_only_stdlib_and_host_modules() -> None:
    allowed = {"krita", "gi", "PyQt5", "PyQt6", "noisebrush_krita"}
    local = {p.stem for p in (KRITA_DIR / "noisebrush_krita").glob("*.py")} | {
        p.stem for p in GIMP_DIR.glob("*.py")
    }
    stdlib = set(__import__("sys").stdlib_module_names)
    for path in [*(KRITA_DIR / "noisebrush_krita").glob("*.py"), *GIMP_DIR.glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                assert top in stdlib | allowed | local, (
                    f"{path.name} imports {n}: plugins may use only stdlib + host"
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
    w, h, ch, px = nb_png.decode(base64.b64decode(wire.encode_png(a)))
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
