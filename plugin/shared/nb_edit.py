"""Host-independent editing logic for the plugins: what region to send, the job body, the pixels back.

Shared by the Krita and GIMP plugins: it lives once in plugin/shared, and `noisebrush install-plugin`
copies it into each plugin so the installed plugin stands alone. Pixels are plain `bytes`, row-major, 8
bits per channel; boxes are (x, y, w, h).
"""

from __future__ import annotations

import base64
import re
from dataclasses import asdict, dataclass, field
from typing import Any

try:  # inside the Krita package
    from .nb_fields import FIELDS
except ImportError:  # beside GIMP's entry script
    from nb_fields import FIELDS  # type: ignore[no-redef]

Box = tuple[int, int, int, int]

KINDS = ("sdedit", "ledits")
LABELS = {"sdedit": "SDEdit", "ledits": "LEDITS"}


SDEDIT = FIELDS["sdedit"]
LEDITS = FIELDS["ledits"]


@dataclass
class Settings:
    """What the user chose in the docker or dialog: the server's job field names, with the defaults the
    engine declares (nb_fields.py is generated from its requests)."""

    kind: str = "sdedit"
    model: str = SDEDIT["model"]["default"]
    strength: float = SDEDIT["strength"]["default"]  # SDEdit's t0
    steps: int = 0  # 0: the prior's own default (the request's None)
    seed: int = SDEDIT["seed"]["default"]
    variations: int = SDEDIT["variations"]["default"]
    prompt: str = SDEDIT["prompt"]["default"]  # SDEdit prompt; LEDITS target prompt
    negative_prompt: str = SDEDIT["negative_prompt"]["default"]
    concepts: str = ""  # LEDITS, in the engine's one written form: "cat:7, -hat" adds cat, removes hat
    skip: float = LEDITS["skip"]["default"]
    context: int = SDEDIT["context"]["default"]  # pixels of context sent around the selection
    previews: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # any other job field, passed through

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        data = dict(data)
        if "margin" in data:  # settings saved before the field took the server's name
            data.setdefault("context", data.pop("margin"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def parse_concepts(text: str) -> list[dict[str, Any]]:
    """'cat:7, -hat, +sky' -> SEGA concepts: the engine's one written form (core/engine/concepts.py, which
    this mirrors for the hosts' Python; tests/test_fields.py holds the two to the same answers). A leading
    '-' removes, '+' (or nothing) adds; one number after the last colon is the scale."""
    out = []
    for part in re.split(r"[,;\n]", text):
        word = part.strip()
        remove = False
        if word.startswith(("-", "+")):
            remove, word = word[0] == "-", word[1:].strip()
        concept: dict[str, Any] = {}
        head, sep, tail = word.rpartition(":")
        if sep and len(tail.split()) <= 1:
            try:
                concept["scale"] = float(tail)
            except ValueError:
                raise ValueError(
                    f"concept {part.strip()!r}: the scale {tail.strip()!r} is not a number; give "
                    "CONCEPT:SCALE (e.g. 'snow:7') or CONCEPT alone"
                ) from None
            word = head.strip()
        if word:
            out.append({"text": word, "remove": remove, **concept})
    return out


def job_body(settings: Settings, image_png: bytes, mask_png: bytes | None) -> dict[str, Any]:
    """The JSON body of POST /v1/jobs for one image (and optional grey mask, 255 = may change)."""
    if settings.kind not in KINDS:
        raise ValueError(f"unknown kind {settings.kind!r}; allowed: {', '.join(KINDS)}")
    body: dict[str, Any] = {"kind": settings.kind, "model": settings.model, "seed": int(settings.seed)}
    image = base64.b64encode(image_png).decode("ascii")
    if mask_png is not None:
        body["mask"] = base64.b64encode(mask_png).decode("ascii")
    if settings.steps > 0:
        body["steps"] = int(settings.steps)
    if settings.kind == "sdedit":
        body.update(guide=image, strength=float(settings.strength), variations=int(settings.variations))
        body.update(prompt=settings.prompt, negative_prompt=settings.negative_prompt)
    else:
        body.update(image=image, skip=float(settings.skip), concepts=parse_concepts(settings.concepts))
        if settings.prompt:
            body["target_prompt"] = settings.prompt
    body.update(settings.extra)
    return body


def batch_body(
    settings: Settings, images_png: list[bytes], mask_png: bytes | None, names: list[str], seed: int
) -> dict[str, Any]:
    """The body of one batch job (POST /v1/jobs, kind "batch"): the settings over several images with one
    mask. Every frame uses `seed` (shared noise), as one job per layer did: a region no layer changes comes
    out the same in every result."""
    body = job_body(settings, b"", mask_png)
    for single in ("guide", "image", "variations"):
        body.pop(single, None)
    body.update(kind="batch", operation=settings.kind, seed=int(seed), shared_noise=True, names=names)
    body["images"] = [base64.b64encode(png).decode("ascii") for png in images_png]
    return body


def result_name(source: str, kind: str, index: int, count: int) -> str:
    """'Sky' -> 'Sky (SDEdit)', or 'Sky (SDEdit 2)' for the second of several variations."""
    label = LABELS.get(kind, kind)
    return f"{source} ({label})" if count <= 1 else f"{source} ({label} {index + 1})"


def bounds_of_mask(mask: bytes, width: int, height: int) -> Box | None:
    """Bounding box of the non-zero bytes of a one-byte-per-pixel mask, or None if it is empty."""
    rows = [y for y in range(height) if mask[y * width : (y + 1) * width].strip(b"\x00")]
    if not rows:
        return None
    left, right = width, 0
    for y in rows:
        row = mask[y * width : (y + 1) * width]
        left = min(left, len(row) - len(row.lstrip(b"\x00")))
        right = max(right, len(row.rstrip(b"\x00")))
    return left, rows[0], right - left, rows[-1] - rows[0] + 1


def region(selection: Box | None, canvas: Box, context: int) -> Box:
    """The box to send: the selection grown by `context` pixels (what the prior sees around it), clipped
    to the canvas."""
    cx, cy, cw, ch = canvas
    if selection is None:
        return canvas
    x, y, w, h = selection
    x0, y0 = max(cx, x - context), max(cy, y - context)
    x1, y1 = min(cx + cw, x + w + context), min(cy + ch, y + h + context)
    if x1 <= x0 or y1 <= y0:
        return canvas
    return x0, y0, x1 - x0, y1 - y0


def grow_to(box: Box, canvas: Box, minimum: int = 8) -> Box:
    """Grow a box to at least `minimum` pixels a side (the server's smallest image), inside the canvas."""
    x, y, w, h = box
    cx, cy, cw, ch = canvas
    if w < minimum:
        x = max(cx, min(x - (minimum - w) // 2, cx + cw - minimum))
        w = min(minimum, cw)
    if h < minimum:
        y = max(cy, min(y - (minimum - h) // 2, cy + ch - minimum))
        h = min(minimum, ch)
    return x, y, w, h


def swap_red_blue(pixels: bytes) -> bytes:
    """BGRA <-> RGBA (Krita's U8 RGBA pixel data comes as B, G, R, A)."""
    out = bytearray(pixels)
    out[0::4] = pixels[2::4]
    out[2::4] = pixels[0::4]
    return bytes(out)


def keep_unselected(source: bytes, result: bytes, mask: bytes, channels: int = 4) -> bytes:
    """`result` with every pixel whose mask byte is 0 taken from `source`, bit for bit."""
    if len(source) != len(result) or len(mask) * channels != len(source):
        raise ValueError("source, result and mask sizes do not match")
    out = bytearray(result)
    for m in re.finditer(rb"\x00+", mask):
        a, b = m.start() * channels, m.end() * channels
        out[a:b] = source[a:b]
    return bytes(out)


def to_rgba(pixels: bytes, channels: int) -> bytes:
    """1-4 channel 8-bit pixels -> RGBA."""
    if channels == 4:
        return pixels
    n = len(pixels) // channels
    out = bytearray(b"\xff" * (4 * n))
    if channels == 3:
        for c in range(3):
            out[c::4] = pixels[c::3]
    elif channels == 1:
        for c in range(3):
            out[c::4] = pixels
    else:
        for c in range(3):
            out[c::4] = pixels[0::2]
        out[3::4] = pixels[1::2]
    return bytes(out)


def crop(pixels: bytes, width: int, box: Box, channels: int = 4) -> bytes:
    """The `box` of a row-major image `width` pixels wide."""
    x, y, w, h = box
    stride = width * channels
    return b"".join(
        pixels[(y + r) * stride + x * channels : (y + r) * stride + (x + w) * channels] for r in range(h)
    )
