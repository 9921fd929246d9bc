"""Real files: corrupt, truncated, empty, huge and odd-mode images give clear errors or load sensibly."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisebrush.core.engine.images import load_image, load_mask, save_image
from noisebrush.core.errors import BadInput


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h pixels and whose data is a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is text, not pixels")
    with pytest.raises(BadInput, match="not an image"):
        load_image(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(BadInput, match="not an image"):
        load_image(p)


def test_truncated_png(tmp_path):
    p = tmp_path / "cut.png"
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="damaged or truncated"):
        load_image(p)


def test_zero_sized_image(tmp_path):
    with pytest.raises(BadInput, match="must not be empty|not an image"):
        load_image(png_header_only(tmp_path / "zero.png", 0, 10))


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BadInput, match="900000000 pixels; at most 100 megapixels"):
        load_image(png_header_only(tmp_path / "bomb.png", 30000, 30000))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000, "refused before decoding"


def test_tiny_image_refused(tmp_path):
    p = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(p)
    with pytest.raises(BadInput, match="at least 8x8"):
        load_image(p)


@pytest.mark.parametrize(
    "mode, channels",
    [("RGB", 3), ("RGBA", 4), ("L", 3), ("LA", 4), ("P", 3), ("1", 3), ("I;16", 3), ("CMYK", 3)],
)
def test_odd_modes_load_as_rgb_or_rgba(tmp_path, mode, channels):
    base = Image.fromarray((np.random.RandomState(0).rand(16, 20, 4) * 255).astype(np.uint8), "RGBA")
    im = (
        (base if "A" in mode else base.convert("RGB")).convert(mode)
        if mode != "I;16"
        else Image.fromarray((np.arange(320).reshape(16, 20) * 200).astype(np.uint16))
    )
    p = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(p)
    arr = load_image(p)
    assert arr.dtype == np.uint8 and arr.shape == (16, 20, channels)


def test_16_bit_keeps_its_range(tmp_path):
    p = tmp_path / "deep.png"
    Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(p)
    assert load_image(p).min() == 255


def test_palette_with_transparency_keeps_alpha(tmp_path):
    im = Image.new("P", (10, 10), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 5, 10))
    im.info["transparency"] = 0
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    arr = load_image(p)
    assert arr.shape[2] == 4 and arr[0, 9, 3] == 0 and arr[0, 0, 3] == 255


def test_mask_size_mismatch_and_values(tmp_path):
    p = tmp_path / "m.png"
    m = np.zeros((10, 12), np.uint8)
    m[:, 6:] = 255
    m[:, 3] = 128
    Image.fromarray(m).save(p)
    with pytest.raises(BadInput, match="mask is 12x10 but the image is 20x20"):
        load_mask(p, (20, 20))
    loaded = load_mask(p, (12, 10))
    assert (
        loaded.dtype == np.float32
        and loaded[0, 0] == 0
        and loaded[0, 7] == 1
        and abs(loaded[0, 3] - 128 / 255) < 1e-6
    )


def test_save_is_atomic_and_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out.png"
    with pytest.raises(BadInput, match="use one of"):
        save_image(tmp_path / "out.gif", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TypeError):
        save_image(out, np.zeros((8, 8, 3), np.complex64))
    assert list(tmp_path.iterdir()) == []
    save_image(out, np.zeros((8, 8, 4), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask, (
        "saved with the usual permissions, not mkstemp's 0600"
    )
    save_image(tmp_path / "out.jpg", np.zeros((8, 8, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png"]
