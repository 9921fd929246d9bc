"""`noisebrush edit --server`: the same edit, run by a `noisebrush serve` that is already up.

A fresh process spends most of a small edit before the first step: importing torch and diffusers and loading
the prior take about 9 s of a 12 s 256 px edit on a 2-core CPU (docs/BENCH.md), and no change of ours can
shrink the libraries' import time. A running server has all of it done, so the command costs the engine's time
plus a fraction of a second, and never imports torch itself. Inputs are read and checked here first, as for a
local run; the results are written the same way (atomically, the same names).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisebrush.core.engine.images import encode_png, save_image
from noisebrush.core.engine.requests import SDEditRequest
from noisebrush.core.errors import BadInput

NO_BUDGET = (
    "--memory-budget is the server's own with --server: start it with `noisebrush serve --memory-budget`"
)


def body(req: SDEditRequest) -> dict[str, Any]:
    """The job body of `req` for POST /v1/jobs: its fields, images as PNG (core/server/wire.py)."""
    out: dict[str, Any] = {"kind": "sdedit"}
    for f in dataclasses.fields(req):
        value = getattr(req, f.name)
        if isinstance(value, np.ndarray):
            if f.name == "mask" and value.dtype != np.uint8:  # loaded as float 0..1, sent as grey 0..255
                value = np.rint(np.clip(value, 0.0, 1.0) * 255.0).astype(np.uint8)
            out[f.name] = encode_png(value)
        elif value is not None:
            out[f.name] = _plain(value)
    # A model, LoRA or ControlNet given as a path is found from this folder here; the server resolves paths
    # in its own model folders, so it is sent absolute (a name such as "default" is sent as it is).
    for name in ("model", "controlnet"):
        if out.get(name) and Path(out[name]).exists():
            out[name] = str(Path(out[name]).resolve())
    out["loras"] = [[str(Path(p).resolve()) if Path(p).exists() else p, w] for p, w in out.get("loras", [])]
    return out


def _plain(value: Any) -> Any:
    """JSON's form of a field value: tuples (the LoRA list, each a (path, weight) pair) become lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def run_remote(
    args: argparse.Namespace, requests: list[SDEditRequest], targets: list[list[Path]], make_folders: Any
) -> int:
    """Submit each request in turn, follow it with a progress bar (and preview files), save its results."""
    from tqdm import tqdm

    from noisebrush.plugin.shared.nb_client import Client, ServerError, read_token

    if args.memory_budget is not None:
        raise BadInput(NO_BUDGET)
    try:
        client = Client(args.server, read_token(), timeout=120.0)
        client.health()
    except ServerError as e:
        raise BadInput(str(e)) from None
    make_folders(targets)
    for guide, req, paths in zip(args.guides, requests, targets, strict=True):
        bar = tqdm(total=None, desc=guide.stem, unit="step", file=sys.stderr, dynamic_ncols=True)
        job_id = ""
        try:
            job_id = client.submit(body(req))["id"]
            final = client.wait(job_id, _on_event(bar, args.previews, guide.stem, len(requests)))
        except ServerError as e:
            raise BadInput(str(e)) from None
        except KeyboardInterrupt:
            if job_id:  # the server would go on computing what nobody waits for
                try:
                    client.cancel(job_id)
                except ServerError:
                    pass
            raise
        finally:
            bar.close()
        if final["status"] == "cancelled":
            raise BadInput("the job was cancelled on the server; nothing was written for " + guide.name)
        if final["status"] != "succeeded":
            raise BadInput(f"the server could not edit {guide.name}: {final.get('error') or final['status']}")
        images = final.get("images") or []
        if len(images) != len(paths):
            raise BadInput(f"the server sent {len(images)} images for {len(paths)} results")
        for png, path in zip(images, paths, strict=True):
            save_image(path, _decode(png))
    print(os.linesep.join(str(p) for ps in targets for p in ps))
    return 0


def _decode(png: str) -> np.ndarray:
    """A base64 PNG from the server (RGB or RGBA, written by `encode_png`) as the array it was made from."""
    with Image.open(io.BytesIO(base64.b64decode(png))) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGBA" if "A" in im.mode else "RGB")))


def _on_event(bar: Any, previews: Path | None, run: str, runs: int) -> Any:
    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "progress" and data.get("total"):
            if bar.total != data["total"]:
                bar.total = data["total"]
            bar.update(int(data.get("step", 0)) - bar.n)
        elif event == "preview" and previews is not None and "png" in data:
            folder = previews / run if runs > 1 else previews
            folder.mkdir(parents=True, exist_ok=True)
            save_image(folder / f"step-{int(data['step']):04d}.png", _decode(data["png"]))

    return on_event
