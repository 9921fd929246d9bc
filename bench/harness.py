"""Benchmark harness: options, result rows, side-by-side timing, memory probes, stand-in models, hooks.

Timings on a shared machine drift, so every comparison runs ours and the peer alternately in one process and
reports the median of the per-pair ratios (each pair is measured seconds apart, so drift cancels).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Options:
    """What every case gets: `quick` shrinks sizes and repetitions so a 2-core CPU finishes in minutes."""

    quick: bool = False
    device: str = "auto"
    compile: bool = False  # also time the opt-in torch.compile path where a case supports it
    threads: int | None = None  # torch CPU threads; on a shared machine 1 thread times far steadier than 2
    pairs: int | None = None  # timed rounds per comparison; None: the case's own (fewer with `quick`)
    workdir: Path = field(default_factory=lambda: cache_dir())

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda") or (self.device == "auto" and torch.cuda.is_available())

    def rounds(self, quick: int, full: int) -> int:
        """Timed rounds for a comparison: `pairs` when given, else the case's quick or full count."""
        return self.pairs or (quick if self.quick else full)


@dataclass
class Row:
    """One line of the table. `ratio` is ours / peer (lower is better unless `target` says >=)."""

    case: str
    ours: float
    peer: float | None
    unit: str
    ratio: float | None
    target: str  # e.g. "<= 1.05", ">= 8", "" for figures reported without a target
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.ratio is None or not self.target:
            return None
        op, value = self.target.split()
        return self.ratio <= float(value) if op == "<=" else self.ratio >= float(value)


Case = Callable[[Options], list[Row]]


def cache_dir() -> Path:
    """Stand-in models are built once and kept here (NOISEBRUSH_BENCH_CACHE overrides)."""
    env = os.environ.get("NOISEBRUSH_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "noisebrush" / "bench"


# -- timing ----------------------------------------------------------------------------------------
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def interleaved(fns: Sequence[Callable[[], Any]], rounds: int, warmup: int = 1) -> list[list[float]]:
    """Seconds of each function in each round; the order rotates every round so that none always runs first."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(rounds):
        for k in range(len(fns)):
            j = (k + r) % len(fns)
            times[j].append(timed(fns[j]))
    return times


def pair_ratio(ours: list[float], peer: list[float]) -> float:
    """Median of the per-round ratios: each pair was timed seconds apart, so drift on the machine cancels."""
    return statistics.median(a / b for a, b in zip(ours, peer, strict=True))


def side_by_side(
    ours: Callable[[], Any], peer: Callable[[], Any], pairs: int, warmup: int = 1
) -> tuple[float, float, float]:
    """Median seconds of ours, of peer, and the median of the per-pair ratios ours/peer; order alternates."""
    a, b = interleaved([ours, peer], pairs, warmup)
    return statistics.median(a), statistics.median(b), pair_ratio(a, b)


# -- memory --------------------------------------------------------------------------------------
def rss_bytes() -> int:
    """Resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so the next peak is this run's; Linux only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- stand-in models ---------------------------------------------------------------------------
def built_once(folder: Path, build: Callable[[Path], object]) -> Path:
    """`folder`, built by `build(tmp)` and renamed into place the first time, so a crash never leaves a
    half-written model that later runs would take for a complete one."""
    if not (folder / "model_index.json").exists():
        tmp = folder.with_name(folder.name + ".tmp")
        build(tmp)
        tmp.rename(folder)
    return folder


def bundled_or_standin(workdir: Path) -> tuple[Path, str]:
    """The bundled prior if installed, else an untrained model of the same architecture (same cost)."""
    from noisebrush.core.engine.sources import BUNDLED

    bundled = BUNDLED / "default"
    if (bundled / "model_index.json").exists():
        return bundled, "bundled prior"

    def build(tmp: Path) -> None:
        from noisebrush.core.lab import scenes
        from noisebrush.core.lab.network import build_prior, save_prior
        from noisebrush.core.lab.network_config import PriorConfig

        torch.manual_seed(0)
        save_prior(build_prior(PriorConfig(vocabulary=list(scenes.VOCABULARY)), tmp), tmp)

    folder = built_once(workdir / "prior-standin", build)
    return folder, "untrained stand-in of the bundled prior's architecture (resources/models/default absent)"


def sd15_folder(workdir: Path) -> Path:
    """An SD 1.5-shaped diffusers folder with random weights (PNDM, as SD 1.5 ships), built once."""
    from noisebrush.bench.standins import tiny_sd

    return built_once(workdir / "sd15-random", lambda tmp: tiny_sd(tmp, size="sd15"))


# -- output --------------------------------------------------------------------------------------------
def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    """A Markdown table: case, ours, peer, ratio, target, met."""
    head = ["case", "ours", "peer", "ratio", "target", "met"]
    body = [
        [
            r.case,
            _fmt(r.ours, r.unit),
            _fmt(r.peer, r.unit),
            _fmt(r.ratio),
            r.target or "(report)",
            {True: "yes", False: "NO", None: "-"}[r.met],
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in body]
    notes = [f"- {r.case}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def machine() -> str:
    """The machine in words, with what sets CPU speed here: the 2-core CPUs this project runs on differ about
    5x per UNet call between AVX2 and AVX-512 with bfloat16 units (docs/BENCH.md)."""
    from noisebrush.core.engine.precision import cpu_computes_bfloat16

    cpus = os.cpu_count() or 0
    units = torch.backends.cpu.get_cpu_capability() + (", bfloat16 units" if cpu_computes_bfloat16() else "")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpus}-core CPU ({units}), {gpu}, torch {torch.__version__}"


def write_json(path: Path, rows: list[Row], options: Options) -> None:
    data = {
        "machine": machine(),
        "options": {**asdict(options), "workdir": str(options.workdir)},
        "rows": [{**asdict(r), "met": r.met} for r in rows],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
