"""Memory probes, each in a fresh process so one run's peak is not hidden by another's.

`probe(spec)` runs `python -m noisebrush.bench.memory SPEC_JSON` and returns what the child measured:
peak RSS of the whole process, RSS just before the run and the run's own peak above it (the kernel's
high-water mark is reset after loading, so loading does not count towards `run_growth`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np


def probe(spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one SDEdit in a child process. spec: model, size (h, w), box (x, y, w, h) or None, steps,
    strength, prompt, rgba, device, context, variations, full_mask."""
    return run_child("noisebrush.bench.memory", spec, timeout)


def run_child(module: str, spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """`python -m MODULE SPEC_JSON` in a fresh process, whose memory is then the case's alone; its last line
    of output is the JSON it measured."""
    proc = subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed: {proc.stderr.strip().splitlines()[-3:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from noisebrush.bench.harness import peak_rss_bytes, reset_peak_rss, rss_bytes
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.requests import SDEditRequest

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    engine = Engine()
    prior = engine.prior(spec["model"], spec.get("device", "cpu"))
    with torch.no_grad():  # weights loaded lazily (mmap) would otherwise count as the run's growth
        for part in (prior.unet, prior.vae, prior.text_encoder):
            if part is not None:
                for p in part.parameters():
                    p.sum()
    h, w = spec["size"]
    channels = 4 if spec.get("rgba") else 3
    guide = np.full((h, w, channels), 200, np.uint8)
    guide[: h // 2, ..., :3] = (90, 140, 220)
    mask = None
    if spec.get("full_mask"):
        mask = np.ones((h, w), np.float32)
    if spec.get("box"):
        x, y, bw, bh = spec["box"]
        mask = np.zeros((h, w), np.float32)
        mask[y : y + bh, x : x + bw] = 1.0
    req = SDEditRequest(
        guide=guide,
        mask=mask,
        model=spec["model"],
        strength=spec.get("strength", 0.5),
        steps=spec.get("steps", 10),
        prompt=spec.get("prompt", ""),
        device=spec.get("device", "cpu"),
        context=spec.get("context", 64),
        low_memory=spec.get("low_memory", False),
        variations=spec.get("variations", 1),
    )
    cuda = torch.cuda.is_available() and req.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    peak_before = peak_rss_bytes()
    base = rss_bytes()
    reset = reset_peak_rss()
    engine.sdedit(req)
    peak = peak_rss_bytes()
    return {
        "process_peak": max(peak, peak_before),
        "base": base,
        "run_growth": max(peak - base, 0) if reset else None,
        "vram_peak": torch.cuda.max_memory_allocated() if cuda else None,
    }


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
