"""PNG in plain Python (zlib only): 8-bit grey, grey+alpha, RGB, RGBA and palette images.

Shared by the Krita and GIMP plugins: it lives once in plugin/shared, and `noisebrush install-plugin`
copies it into each plugin so the installed plugin stands alone. Rows are written unfiltered, which makes
encoding a few byte joins; decoding takes every filter, with a fast path for unfiltered rows (the
NoiseBrush server writes those).
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4, 3: 1}


class PNGError(ValueError):
    """Not a PNG this module reads."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode(width: int, height: int, channels: int, pixels: bytes, level: int = 1) -> bytes:
    """Row-major 8-bit pixels (channels 1, 2, 3 or 4) -> PNG file bytes."""
    if channels not in _COLOUR_TYPE:
        raise PNGError(f"channels must be 1-4, got {channels}")
    stride = width * channels
    if len(pixels) != stride * height:
        raise PNGError(f"expected {stride * height} bytes for {width}x{height}x{channels}, got {len(pixels)}")
    mv = memoryview(pixels)
    raw = b"".join(b"\x00" + mv[y * stride : (y + 1) * stride].tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return (
        SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b"")
    )


def decode(data: bytes) -> tuple[int, int, int, bytes]:
    """PNG file bytes -> (width, height, channels, row-major 8-bit pixels); palettes come back RGB(A)."""
    if not data.startswith(SIGNATURE):
        raise PNGError("not a PNG file")
    pos, idat, palette, trns = 8, [], b"", b""
    width = height = depth = ctype = interlace = -1
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IEND":
            break
    if width < 0:
        raise PNGError("PNG without IHDR")
    if depth != 8 or ctype not in _CHANNELS:
        raise PNGError(f"only 8-bit PNGs are read, got bit depth {depth}, colour type {ctype}")
    if interlace:
        raise PNGError("interlaced PNGs are not read")
    channels = _CHANNELS[ctype]
    raw = zlib.decompress(b"".join(idat))
    pixels = _unfilter(raw, width, height, channels)
    if ctype == 3:
        return _depalette(pixels, width, height, palette, trns)
    return width, height, channels, pixels


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytes:
    stride = width * bpp
    if len(raw) < (stride + 1) * height:
        raise PNGError("truncated PNG data")
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise PNGError(f"unknown PNG filter {ftype}")
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return bytes(out)


def _depalette(
    idx: bytes, width: int, height: int, palette: bytes, trns: bytes
) -> tuple[int, int, int, bytes]:
    n = len(palette) // 3
    if trns:
        table = [palette[3 * i : 3 * i + 3] + bytes([trns[i] if i < len(trns) else 255]) for i in range(n)]
        return width, height, 4, b"".join(table[i] for i in idx)
    table = [palette[3 * i : 3 * i + 3] for i in range(n)]
    return width, height, 3, b"".join(table[i] for i in idx)
