"""Live mode's bookkeeping, free of Qt and Krita: when a painted change has settled, and the bounded
history of results.

Krita 5.1.5's Python API has no signal for "the pixels changed" (its Notifier only tells of documents and
windows opening, saving and closing; a node has no signals), and `Document.modified()` stays true after the
first change. So the docker polls: every POLL_MS it hashes the watched layer's pixels in the region it
would send (`krita_host.region_signature`, measured in real Krita in tests/hosts) and asks for a run once
the hash has changed and then held still for one poll (a stroke has ended). Only the watched layer is
read, so writing results into the preview layer above it never looks like a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

POLL_MS = 150
HISTORY_SIZE = 8  # results kept (pixels and thumbnail); the setting "history" changes it


class Settle:
    """Feed it one signature per poll; `feed` is true once after each change that has held still."""

    def __init__(self, signature: Any = None) -> None:
        self.last = signature
        self.pending = False

    def feed(self, signature: Any) -> bool:
        if signature != self.last:
            self.last, self.pending = signature, True
            return False
        if self.pending:
            self.pending = False
            return True
        return False


@dataclass
class Entry:
    """One finished result: what made it, where it goes, its pixels."""

    settings: dict[str, Any]
    source: Any  # the Krita node it was made from
    source_name: str
    box: tuple[int, int, int, int]
    rgba: bytes
    live: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def caption(self) -> str:
        s = self.settings
        what = f"t0 {s['strength']:.2f}" if s["kind"] == "sdedit" else f"skip {s['skip']:.2f}"
        return f"seed {s['seed']} · {what}"

    def tooltip(self) -> str:
        s = self.settings
        lines = [
            f"{'Live ' if self.live else ''}{s['kind']} on {self.source_name}",
            f"model {s['model']}, seed {s['seed']}, steps {s['steps'] or 'model default'}",
            f"strength {s['strength']:.2f}" if s["kind"] == "sdedit" else f"skip {s['skip']:.2f}",
        ]
        if s.get("prompt"):
            lines.append(f"prompt: {s['prompt']}")
        if s["kind"] == "ledits" and s.get("concepts"):
            lines.append(f"concepts: {s['concepts']}")
        return "\n".join(lines)


class History:
    """The last `size` results, newest first; older ones are dropped with their pixels."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.size = max(1, size)
        self.entries: list[Entry] = []

    def add(self, entry: Entry) -> list[Entry]:
        """Keep `entry`; returns the entries dropped to stay within `size`."""
        self.entries.insert(0, entry)
        dropped, self.entries = self.entries[self.size :], self.entries[: self.size]
        return dropped
