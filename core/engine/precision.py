"""The precision the denoiser computes in.

CUDA priors load in float16 (engine.pick_device). A CPU prior keeps its float32 weights, and where the CPU
computes bfloat16 in hardware (AVX512-BF16 or AMX: recent Xeon and EPYC parts) its UNet runs under bfloat16
autocast: on the 2-core EPYC that CI and the benchmarks use, one UNet call of the bundled prior took 0.11 s
instead of 0.23 s at 256 px and 1.06 s instead of 2.62 s at 768x512, and a whole SDEdit of the README's lake
guide differed from the float32 one by 0.23/255 per value on average (99th percentile 1/255). Norms and
softmax stay float32 under autocast, and the model's output is cast back before guidance mixes it.

Where the CPU has no bfloat16 units autocast would emulate it, slower than float32 (the AVX2-only EPYC of
another session), so auto leaves such a CPU in float32. `NOISEBRUSH_PRECISION` (or Engine(precision=...))
overrides the choice: `float32` keeps a bfloat16 CPU in float32, for results bit-comparable with another
float32 run such as diffusers' own pipelines (the test suite pins it, so that its figures do not depend on
the CPU it lands on); `bfloat16` forces the bfloat16 path on any CPU, to see what it does to a result.
CUDA is untouched by all three: its priors are float16 weights already.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from noisebrush.core.errors import BadInput

PRECISION_ENV = "NOISEBRUSH_PRECISION"
PRECISIONS = ("auto", "float32", "bfloat16")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names for the hardware that computes bfloat16


def resolve(precision: str | None) -> str:
    """`precision`, else the environment's, else auto; anything else is refused with what is allowed."""
    value = precision if precision is not None else os.environ.get(PRECISION_ENV, "auto") or "auto"
    if value not in PRECISIONS:
        where = "precision" if precision is not None else PRECISION_ENV
        raise BadInput(f"{where} is {value!r}; allowed: {', '.join(PRECISIONS)}")
    return value


@functools.cache
def cpu_computes_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 units (Linux tells in /proc/cpuinfo; elsewhere: assume not)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return any(f in flags for f in _BF16_FLAGS)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The dtype the denoiser's UNet runs in under autocast on `device`; None: its weights' own dtype."""
    if device.type != "cpu" or precision == "float32":
        return None
    return torch.bfloat16 if precision == "bfloat16" or cpu_computes_bfloat16() else None
