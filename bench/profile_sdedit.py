"""Where an SDEdit run's time goes, ours against diffusers' img2img on the same SD 1.5-shaped weights.

Prints Markdown: seconds per component (text encoder, VAE encoder, UNet, VAE decoder, the rest) for each
side, then torch.profiler's top operators by self CPU time for ours. Used for docs/PROFILE.md.

    .venv/bin/python bench/profile_sdedit.py --size 256 --steps 10 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from noisebrush.bench.harness import cache_dir, sd15_folder
from noisebrush.bench.sdedit import stock_img2img
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.loading import quiet_libraries
from noisebrush.core.engine.requests import SDEditRequest


def component_clock(parts: dict[str, torch.nn.Module]) -> tuple[dict[str, float], Callable[[], None]]:
    """Seconds spent inside each module's forward, via hooks; returns the totals and a remover."""
    totals: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    handles = []
    for name, module in parts.items():

        def pre(_m: Any, _a: Any, name: str = name) -> None:
            started[name] = time.perf_counter()

        def post(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            totals[name] += time.perf_counter() - started[name]

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def remove() -> None:
        for h in handles:
            h.remove()

    return totals, remove


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()

    folder = sd15_folder(cache_dir())
    engine = Engine()
    prior = engine.prior(str(folder), "cpu")
    guide = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    prompt = "a red barn in a field"
    req = SDEditRequest(
        guide=guide,
        model=str(folder),
        strength=0.6,
        steps=args.steps,
        guidance=7.5,
        prompt=prompt,
        device="cpu",
    )
    pipe = stock_img2img(folder, prior.dtype, prior.device)

    def peer() -> None:
        pipe(
            prompt,
            image=Image.fromarray(guide),
            strength=0.6,
            num_inference_steps=args.steps,
            guidance_scale=7.5,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
        )

    runs = {"ours": lambda: engine.sdedit(req), "diffusers": peer}
    parts = {
        "text encoder": prior.text_encoder,
        "VAE encoder": prior.vae.encoder,
        "UNet": prior.unet,
        "VAE decoder": prior.vae.decoder,
    }
    for fn in runs.values():
        fn()  # warm-up
    print(
        f"SD 1.5-shaped random weights, {args.size}x{args.size}, strength 0.6, {args.steps} steps, CPU float32, "
        f"{torch.get_num_threads()} thread(s)\n"
    )
    print("| component | " + " | ".join(runs) + " |")
    print("|---|" + "---|" * len(runs))
    results = {}
    for name, fn in runs.items():
        totals, remove = component_clock(parts)
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        remove()
        results[name] = {
            **totals,
            "rest (Python, scheduler, image conversion)": wall - sum(totals.values()),
            "wall": wall,
        }
    for row in [*parts, "rest (Python, scheduler, image conversion)", "wall"]:
        print(f"| {row} | " + " | ".join(f"{results[n][row]:.2f} s" for n in runs) + " |")

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.sdedit(req)
    print("\nTop operators of our run by self CPU time:\n\n```")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))
    print("```")


if __name__ == "__main__":
    main()
