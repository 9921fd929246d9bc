"""The server's JSON shapes, derived from the request dataclasses so the two cannot drift apart.

A job body carries exactly the fields of `SDEditRequest` or `LeditsRequest` plus `kind`; image fields
(`guide`, `image`, `mask`) travel as base64 PNG. `to_request` builds the dataclass and validates it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from noisebrush.core.engine.requests import Concept, LeditsRequest, Lora, SDEditRequest, excerpt
from noisebrush.core.engine.sources import check_steps, model_in_folders, schedule_steps
from noisebrush.core.errors import BadInput

IMAGE_HELP = "base64 PNG (a data: URL prefix is accepted); RGB or RGBA, 8 bits per channel"
MASK_HELP = "base64 PNG, same size as the image; converted to grey, 255 = may change, 0 = kept as is"


class TooLarge(Exception):
    """An image has more pixels than the server accepts (answered 413)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _wire_type(tp: Any) -> Any:
    """The JSON-side type of one dataclass field type."""
    if tp is np.ndarray:
        return str
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = tuple(_wire_type(a) for a in typing.get_args(tp))
        return Union[args]  # noqa: UP007 - built at run time from a tuple
    if origin is list:
        (item,) = typing.get_args(tp)
        return list[_wire_type(item)]  # type: ignore[misc]
    if tp is Concept:
        return ConceptIn
    return tp


def _model_from(
    cls: type, name: str, extra: dict[str, Any] | None = None, doc: str = "", omit: tuple[str, ...] = ()
) -> type[BaseModel]:
    hints = typing.get_type_hints(cls, localns={"np": np})  # requests import numpy only when checking
    fields: dict[str, Any] = dict(extra or {})
    for f in dataclasses.fields(cls):
        if f.name in omit:
            continue
        tp = _wire_type(hints[f.name])
        desc = None
        if hints[f.name] is np.ndarray:
            desc = IMAGE_HELP
        elif f.name == "mask":
            desc = MASK_HELP
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (tp, Field(default=f.default, description=desc))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (tp, Field(default_factory=f.default_factory, description=desc))
        else:
            fields[f.name] = (tp, Field(description=desc))
    model = create_model(name, __base__=_Strict, **fields)
    model.__doc__ = doc or cls.__doc__
    return model


ConceptIn = _model_from(Concept, "Concept")
SDEditJob = _model_from(
    SDEditRequest,
    "SDEditJob",
    {"kind": (Literal["sdedit"], ...)},
    "An SDEdit run (Meng et al. 2022): the fields of core.requests.SDEditRequest.",
)
LeditsJob = _model_from(
    LeditsRequest,
    "LeditsJob",
    {"kind": (Literal["ledits"], ...)},
    "A LEDITS run (edit-friendly DDPM inversion + SEGA): the fields of core.requests.LeditsRequest.",
)


def _batch_model(cls: type, operation: str, image_field: str, name: str) -> type[BaseModel]:
    """A batch body: the request's fields but its image, one mask for every frame, and the frames. A batch
    makes one output per frame (no `variations`); a ControlNet image belongs to one frame, so none."""
    extra = {
        "kind": (Literal["batch"], ...),
        "operation": (Literal[operation], ...),  # type: ignore[valid-type]
        "images": (list[str], Field(min_length=1, description=f"the frames, in order; each {IMAGE_HELP}")),
        "names": (
            list[str] | None,
            Field(
                None, description="a name per image, echoed in frame errors (default: frame0, frame1, ...)"
            ),
        ),
        "shared_noise": (
            bool,
            Field(
                False,
                description="every frame uses `seed` (static regions stay put); off: frame n uses seed + n",
            ),
        ),
    }
    doc = f"{operation} over many frames through the batch runner (core.batch.runner.run_batch)."
    return _model_from(cls, name, extra, doc, omit=(image_field, "control", "variations"))


BatchSDEditJob = _batch_model(SDEditRequest, "sdedit", "guide", "BatchSDEditJob")
BatchLeditsJob = _batch_model(LeditsRequest, "ledits", "image", "BatchLeditsJob")
BATCH_JOBS = (BatchSDEditJob, BatchLeditsJob)


def _job_tag(body: Any) -> str | None:
    """Which body model a job is: its kind, and a batch's operation too (one flat tagged union: OpenAPI tools
    such as schemathesis cannot read a discriminated union nested in another)."""
    get = body.get if isinstance(body, dict) else lambda k: getattr(body, k, None)
    return f"batch-{get('operation')}" if get("kind") == "batch" else get("kind")


JobIn = Annotated[
    Union[  # noqa: UP007 - pydantic reads the tags off the union's members
        Annotated[SDEditJob, Tag("sdedit")],  # type: ignore[valid-type]
        Annotated[LeditsJob, Tag("ledits")],  # type: ignore[valid-type]
        Annotated[BatchSDEditJob, Tag("batch-sdedit")],  # type: ignore[valid-type]
        Annotated[BatchLeditsJob, Tag("batch-ledits")],  # type: ignore[valid-type]
    ],
    Discriminator(
        _job_tag,
        custom_error_type="job_kind",
        custom_error_message='kind must be "sdedit", "ledits" or "batch", and a batch\'s operation "sdedit" or "ledits"',
    ),
]


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    position: int | None = Field(None, description="place in the waiting line (0 = next), while queued")
    step: int
    total: int
    stage: str
    variation: int
    error: str | None = None
    error_kind: Literal["bad_input", "engine", "lost"] | None = Field(
        None, description='"lost": the job was unfinished when the server stopped; submit it again'
    )
    images: list[str | None] | None = Field(
        None,
        description="base64 PNG results once succeeded: one per variation; a batch's one per frame in "
        "input order, null for a frame that failed",
    )
    frame: int | None = Field(None, description="a batch: the frame (0-based, input order) now running")
    frames: int | None = Field(None, description="a batch: how many frames it has")
    frame_errors: list[str | None] | None = Field(
        None, description="a batch: one entry per frame, null where it succeeded, else why it failed"
    )
    created: float
    started: float | None = None
    finished: float | None = None


class ModelOut(BaseModel):
    name: str
    kind: str
    source: str
    size_bytes: int
    vocabulary: list[str] | None = Field(
        None, description="allowed prompt/concept words of a closed-vocabulary prior"
    )
    schedule_steps: int | None = Field(
        None, description="timesteps of the prior's schedule: the most `steps` a job with it may ask for"
    )


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    api: int


class ErrorOut(BaseModel):
    detail: str


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's 422 detail without the offending input: it may be NaN (not JSON) or megabytes long.

    Keeps the `[{"loc": [...], "msg": ..., "type": ...}]` shape the plugins read, each part cut short.
    """
    out = []
    for e in errors:
        loc = [p if isinstance(p, int) else excerpt(str(p)) for p in e.get("loc", ())]
        out.append({"loc": loc, "msg": excerpt(str(e.get("msg", "")), 300), "type": str(e.get("type", ""))})
    return out


# -- images ---------------------------------------------------------------------------------------
def decode_png(
    data: str, name: str, max_pixels: int, *, mask: bool = False, header_only: bool = False
) -> np.ndarray:
    """base64 PNG -> uint8 RGB/RGBA, or float32 (H, W) in [0, 1] for a mask. Checks size before decoding.

    `header_only`: check the file's structure (chunk CRCs) and answer an array of the image's shape and type
    that takes no memory (all zeros, read-only), for checks at submit that need only the size: decoding a
    4096x4096 guide there costs seconds and a few hundred MB that the allocator may keep.
    """
    return decode_png_bytes(b64_bytes(data, name), name, max_pixels, mask=mask, header_only=header_only)


def b64_bytes(data: str, name: str) -> bytes:
    """The bytes of a base64 image field (a data: URL prefix is accepted)."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{name} is not valid base64") from None


def decode_png_bytes(
    raw: bytes, name: str, max_pixels: int, *, mask: bool = False, header_only: bool = False
) -> np.ndarray:
    """`decode_png` of the PNG's bytes."""
    try:
        img = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise TooLarge(
            f"{name} has far more pixels than this server accepts (at most {max_pixels})"
        ) from None
    except Exception:
        raise BadInput(f"{name} is not a PNG image") from None
    if img.format != "PNG":
        raise BadInput(f"{name} must be a PNG image, got {img.format}")
    w, h = img.size
    if w * h > max_pixels:
        raise TooLarge(f"{name} is {w}x{h} = {w * h} pixels; this server accepts at most {max_pixels} pixels")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if header_only:
        try:
            img.verify()
        except Exception as exc:
            raise BadInput(f"{name} is a damaged PNG: {excerpt(str(exc))}") from None
        shape: tuple[int, ...] = (h, w) if mask else (h, w, 4 if has_alpha else 3)
        return np.broadcast_to(np.zeros((), np.float32 if mask else np.uint8), shape)
    try:
        img.load()
        if mask:
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        return np.ascontiguousarray(np.asarray(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8))
    except Exception as exc:
        raise BadInput(f"{name} could not be decoded as PNG: {exc}") from None


def check_model(req: SDEditRequest | LeditsRequest, listed: list[dict[str, Any]]) -> None:
    """The request's model is one `noisebrush models` lists (`listed`) or a path inside the model folders,
    and its steps fit that model's schedule. A refused path reads the same whether or not it exists."""
    entry = next((m for m in listed if m.get("name") == req.model), None)
    if entry is not None:
        most = entry.get("schedule_steps")
    else:
        path = model_in_folders(req.model)
        if path is None:
            raise BadInput(
                f"model {excerpt(req.model)!r} is not an installed model: use a name GET /v1/models lists "
                "(`noisebrush models`) or a path inside the model folders"
            )
        most = schedule_steps(path)
    if most is not None:
        check_steps(req.steps, most, req.model)


def _files_in_folders(values: dict[str, Any]) -> None:
    """A client names LoRA and ControlNet files as it names models: inside the model folders, never any
    path of the server's machine. Each is replaced by the file it resolves to, so the run loads that one."""
    loras = []
    for item in values.get("loras") or ():
        path, weight = (item["path"], item.get("weight", 1.0)) if isinstance(item, dict) else item
        found = model_in_folders(path)
        if found is None:
            raise BadInput(f"LoRA {excerpt(str(path))!r} is not a file inside the model folders")
        loras.append(Lora(str(found), weight))
    values["loras"] = tuple(loras)
    if values.get("controlnet"):
        found = model_in_folders(values["controlnet"])
        if found is None:
            raise BadInput(f"controlnet {excerpt(values['controlnet'])!r} is not inside the model folders")
        values["controlnet"] = str(found)


def to_request(
    body: BaseModel, max_pixels: int, *, checks_only: bool = False
) -> tuple[str, SDEditRequest | LeditsRequest]:
    """Build and validate the request dataclass of a job body. Raises BadInput or TooLarge.

    `checks_only`: the guide (or image) is read from its PNG header alone (`decode_png`'s `header_only`), so
    the request is fit for validation, model and budget checks at submit but not for running. The mask is
    decoded: the region it selects decides the work size.
    """
    values = body.model_dump()
    kind = values.pop("kind")
    cls: type[SDEditRequest] | type[LeditsRequest] = SDEditRequest if kind == "sdedit" else LeditsRequest
    image_field = "guide" if kind == "sdedit" else "image"
    values[image_field] = decode_png(values[image_field], image_field, max_pixels, header_only=checks_only)
    if values.get("mask") is not None:
        values["mask"] = decode_png(values["mask"], "mask", max_pixels, mask=True)
    if values.get("control") is not None:
        values["control"] = decode_png(values["control"], "control", max_pixels, header_only=checks_only)
    if kind == "sdedit":
        _files_in_folders(values)
    if kind == "ledits":
        values["concepts"] = [Concept(**c) for c in values["concepts"]]
    req = cls(**values)
    req.validate()
    return kind, req


# -- a job waiting in line ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HeldBody:
    """A validated job body whose images are kept as the PNG bytes they came in: what a queued job
    holds instead of arrays (a 4096x4096 guide and mask decode to about 130 MB; their PNGs are often
    a few MB). `decode` builds the request just before the job runs."""

    body: BaseModel  # the body with its image fields emptied
    pngs: dict[str, bytes]
    max_pixels: int

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.pngs.values())

    def decode(self) -> SDEditRequest | LeditsRequest:
        images = {name: base64.b64encode(png).decode("ascii") for name, png in self.pngs.items()}
        return to_request(self.body.model_copy(update=images), self.max_pixels)[1]


def hold(body: BaseModel, max_pixels: int) -> HeldBody:
    """`body`, with its base64 images as PNG bytes. Call it once `to_request` has accepted the body."""
    pngs = {}
    for name in ("guide", "image", "mask", "control"):
        data = getattr(body, name, None)
        if isinstance(data, str):
            pngs[name] = base64.b64decode(data.partition(",")[2] if data.startswith("data:") else data)
    return HeldBody(body.model_copy(update=dict.fromkeys(pngs, "")), pngs, max_pixels)
