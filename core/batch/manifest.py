"""The batch manifest: `noisebrush-batch.json` in the output folder records, per frame, the hashes of its
input, its mask and the request it was made with, and the hash of the output it wrote.

A frame counts as done only when all four still match, so a rerun skips what is done and redoes what is
missing or changed. An entry is recorded before its output is renamed into place, with the output's hash:
a run killed between the two leaves an entry whose output is missing (or still the old one) and the frame is
redone; a run killed after both skips it. No output is ever written twice for one done frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noisebrush.core.errors import BadInput

NAME = "noisebrush-batch.json"
FORMAT = 1


def fingerprint(fields: dict[str, Any]) -> str:
    """One hash for a request's fields (canonical JSON), so every entry need not repeat them."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    input: str
    mask: str | None
    request: str  # fingerprint of the request the frame was made with
    seed: int  # the frame's own seed (seed + frame number, or the shared one)
    output: str  # file name in the output folder
    output_sha256: str


class Manifest:
    def __init__(self, folder: Path) -> None:
        self.path = folder / NAME
        self.requests: dict[str, dict[str, Any]] = {}
        self.frames: dict[str, Entry] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            self.requests = dict(data["requests"])
            self.frames = {name: Entry(**e) for name, e in data["frames"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise BadInput(
                f"batch manifest {self.path} cannot be read ({e}); move it away to redo every frame"
            ) from None

    def done(self, name: str, entry: Entry) -> bool:
        """Whether `name` was made from this input, mask and request, and its output is still the one made."""
        old = self.frames.get(name)
        if old is None or dataclasses.replace(old, output_sha256="") != dataclasses.replace(
            entry, output_sha256=""
        ):
            return False
        try:
            data = (self.path.parent / old.output).read_bytes()
        except OSError:
            return False
        return hashlib.sha256(data).hexdigest() == old.output_sha256

    def record(self, name: str, entry: Entry, request: dict[str, Any]) -> None:
        self.requests[entry.request] = request
        self.frames[name] = entry
        self.save()

    def forget(self, name: str) -> None:
        if self.frames.pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        used = {e.request for e in self.frames.values()}
        data = {
            "format": FORMAT,
            "requests": {k: v for k, v in self.requests.items() if k in used},
            "frames": {name: vars(e) for name, e in self.frames.items()},
        }
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, then rename: a reader (or a rerun) sees the old file or the new
    one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
