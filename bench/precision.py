"""The CPU's compute precision (core/engine/precision.py): a full SDEdit of the bundled prior in float32 against
the same edit with the UNet under bfloat16 autocast, timed in one run, and how far the two images differ.
On a CPU with bfloat16 units the ratio is the speed-up `auto` takes; on one without, it is the cost of the
emulation that `auto` avoids."""

from __future__ import annotations

import numpy as np

from noisebrush.bench.canvas import lake_guide
from noisebrush.bench.harness import Case, Options, Row, bundled_or_standin, side_by_side


def bfloat16_vs_float32(opt: Options) -> list[Row]:
    """256x256 full edit, t0 0.5: bfloat16 UNet / float32 (engine seconds, ratio) and mean |difference|."""
    from noisebrush.core.engine import precision
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.requests import SDEditRequest

    path, label = bundled_or_standin(opt.workdir)
    side = 128 if opt.quick else 256
    req = SDEditRequest(guide=lake_guide(side, side), model=str(path), device="cpu", strength=0.5)
    fast, full = Engine(precision="bfloat16"), Engine(precision="float32")
    for engine in (fast, full):
        engine.prior(str(path), "cpu")
    ours, peer, ratio = side_by_side(lambda: fast.sdedit(req), lambda: full.sdedit(req), opt.rounds(1, 3))
    diff = np.abs(fast.sdedit(req)[0].astype(np.int16) - full.sdedit(req)[0]).mean()
    units = (
        "has bfloat16 units: auto takes bfloat16"
        if precision.cpu_computes_bfloat16()
        else ("has no bfloat16 units (emulated): auto stays float32")
    )
    note = f"{label}; {side}x{side}; this CPU {units}; mean |bfloat16 - float32| {diff:.2f}/255"
    return [Row(f"10 {side}x{side} full edit, bfloat16 UNet / float32", ours, peer, "s", ratio, "", note)]


CASES: dict[str, Case] = {"precision": bfloat16_vs_float32}
