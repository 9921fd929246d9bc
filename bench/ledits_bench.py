"""LEDITS timing: ours vs diffusers' LEDITS++ on the same model, steps and concepts; cached re-edit vs first edit.

    .venv/bin/python bench/ledits_bench.py                       # tiny random SD, 64x64, CPU
    .venv/bin/python bench/ledits_bench.py --size sd15 --resolution 256 --repeats 1

Both sides: DDIM, the same regenerated steps (ours steps=S, skip=k; theirs num_inversion_steps=S - round(S k)
with the matching skip), the same concepts, scales, thresholds and warm-ups, no cross-attention masks, no
momentum, LEDITS++'s pixel-wise threshold, VAE encode and decode included. Times are medians of `--repeats`
runs after one warm-up run each. Targets: ours / diffusers <= 1.0; cached re-edit / first edit <= 0.6.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from noisebrush.core import standins
from noisebrush.core.ledits import InversionCache, ledits
from noisebrush.core.priors import Prior, quiet_libraries
from noisebrush.core.requests import Concept, LeditsRequest


def median_times(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each, the runs interleaved so that load from other processes hits all alike."""
    for fn in fns:
        fn()  # warm-up: allocator, kernels, lazy imports
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def build(size: str, folder: Path) -> tuple[Prior, object]:
    """One set of random weights shared by both sides: our Prior and diffusers' pipeline."""
    from diffusers import LEditsPPPipelineStableDiffusion
    from transformers import CLIPTokenizer

    parts = standins.sd_components(seed=0, size=size, scheduler="DDIMScheduler")
    standins.write_clip_tokenizer(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    for name in ("unet", "vae", "text_encoder"):
        parts[name].eval().requires_grad_(False)
    prior = Prior(
        path=folder,
        unet=parts["unet"],
        scheduler_config=dict(parts["scheduler"].config),
        scheduler_class=type(parts["scheduler"]),
        device=torch.device("cpu"),
        dtype=torch.float32,
        vae=parts["vae"],
        text_encoder=parts["text_encoder"],
        tokenizer=tokenizer,
    )
    pipe = LEditsPPPipelineStableDiffusion(
        vae=parts["vae"],
        text_encoder=parts["text_encoder"],
        tokenizer=tokenizer,
        unet=parts["unet"],
        scheduler=parts["scheduler"],
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    add_noise = pipe.scheduler.add_noise
    # diffusers 0.42's invert indexes alphas_cumprod with a float tensor; cast it so it runs at all.
    pipe.scheduler.add_noise = lambda x, noise, t: add_noise(x, noise, t.long())
    return prior, pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="ours: the whole schedule")
    ap.add_argument("--skip", type=float, default=0.2)
    ap.add_argument("--concepts", type=int, default=2)
    ap.add_argument("--source-prompt", default="", help="guides the inversion on both sides (2 rows a step)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared machine)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    quiet_libraries()

    words = ["a red barn", "cat", "snow", "a tree", "sunset", "a dog"]
    concepts = [
        Concept(words[i % len(words)], remove=bool(i % 2), scale=5.0, threshold=0.9, warmup=2)
        for i in range(args.concepts)
    ]
    others = [Concept(c.text + " x", c.remove, c.scale, c.threshold, c.warmup) for c in concepts]
    img = (np.random.RandomState(0).rand(args.resolution, args.resolution, 3) * 255).astype(np.uint8)
    regenerated = args.steps - round(args.steps * args.skip)
    their_skip = args.steps / regenerated - 1  # int(n * (1 + skip)) == steps
    assert int(regenerated * (1 + their_skip) + 1e-9) == args.steps

    with tempfile.TemporaryDirectory() as tmp:
        prior, pipe = build(args.size, Path(tmp))

        def request(cs: list[Concept], seed: int = 0) -> LeditsRequest:
            return LeditsRequest(
                image=img,
                concepts=cs,
                steps=args.steps,
                skip=args.skip,
                seed=seed,
                source_prompt=args.source_prompt,
                momentum=0.0,
                threshold_over="pixel",
                device="cpu",
            )

        def theirs() -> None:
            pipe.invert(
                image=Image.fromarray(img),
                num_inversion_steps=regenerated,
                skip=their_skip,
                generator=torch.Generator().manual_seed(0),
                source_prompt=args.source_prompt,
            )
            pipe(
                editing_prompt=[c.text for c in concepts],
                reverse_editing_direction=[c.remove for c in concepts],
                edit_guidance_scale=[c.scale for c in concepts],
                edit_threshold=[c.threshold for c in concepts],
                edit_warmup_steps=[c.warmup for c in concepts],
                use_cross_attn_mask=False,
                use_intersect_mask=False,
                output_type="np",
            )

        def ours_first() -> None:
            ledits(prior, request(concepts), InversionCache())  # an empty cache: inversion included

        cache = InversionCache()
        ledits(prior, request(concepts), cache)
        flip = [0]

        def ours_again() -> None:  # the same image, other concepts: the inversion comes from the cache
            flip[0] ^= 1
            ledits(prior, request(others if flip[0] else concepts), cache)

        t_theirs, t_first, t_again = median_times([theirs, ours_first, ours_again], args.repeats)
        inv_bytes = cache.nbytes

    print(
        f"model {args.size}, {args.resolution}x{args.resolution}, steps {args.steps} skip {args.skip} "
        f"({regenerated} regenerated), {args.concepts} concepts, source prompt {args.source_prompt!r}, "
        f"{args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    print(f"diffusers LEDITS++ (invert + edit): {t_theirs:8.3f} s")
    print(
        f"ours, first edit (invert + edit):   {t_first:8.3f} s   ratio {t_first / t_theirs:.2f} (target <= 1.0)"
    )
    print(
        f"ours, re-edit from cache:           {t_again:8.3f} s   ratio {t_again / t_first:.2f} (target <= 0.6)"
    )
    print(f"cached inversion: {inv_bytes / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
