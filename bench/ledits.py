"""LEDITS benchmark cases for `noisebrush bench`: ours against diffusers' LEDITS++; a cached re-edit.

    noisebrush bench ledits --quick          # tiny random SD, 64x64, 20 steps, CPU
    noisebrush bench ledits --device cuda    # SD 1.5-shaped random weights, 512x512, 30 steps, float16
    noisebrush bench ledits-large --quick    # the bundled prior on a 256x256 scene: carried up vs full size

Both sides run DDIM on the same weights with the same regenerated steps (ours steps=S, skip=0.2; theirs
num_inversion_steps=S - round(0.2 S), skip=0.25: the same schedule, docs/LEDITS.md), the same seed, concepts,
scales, thresholds and warm-ups, no cross-attention masks, no momentum, LEDITS++'s pixel-wise threshold, VAE
encode and decode included. Each round times diffusers (invert + edit), our first edit (an empty inversion
cache: inversion included) and our re-edit of the same image with other concepts (inversion from the cache),
in rotating order; each ratio is the median of the per-round ratios (bench/harness.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noisebrush.bench.harness import Case, Options, Row, built_once, interleaved, pair_ratio, sd15_folder
from noisebrush.core.engine.engine import pick_device
from noisebrush.core.engine.ledits import InversionCache, ledits
from noisebrush.core.engine.loading import load_prior
from noisebrush.core.engine.priors import Prior
from noisebrush.core.engine.requests import Concept, LeditsRequest

SKIP = 0.2  # ours; LEDITS++'s matching skip is steps / regenerated - 1 = 0.25 exactly, whatever the steps
WORDS = ("a red barn", "a cat", "snow", "a tree")


def tiny_sd_folder(workdir: Path) -> Path:
    """A tiny random Stable Diffusion (diffusers' dummy-component sizes) with DDIM, built once."""
    from noisebrush.bench.standins import tiny_sd

    return built_once(workdir / "sd-tiny-ddim", lambda tmp: tiny_sd(tmp, scheduler="DDIMScheduler"))


def with_ddim(prior: Prior) -> Prior:
    """The same modules stepped by DDIM: LEDITS++ inverts edit-friendly only with DDIM (else its own solver)."""
    from diffusers import DDIMScheduler

    config = dict(DDIMScheduler.from_config(prior.scheduler_config).config)
    return dataclasses.replace(prior, scheduler_class=DDIMScheduler, scheduler_config=config)


def leditspp(prior: Prior, folder: Path, own_copy: bool) -> Any:
    """diffusers' LEditsPPPipelineStableDiffusion with DDIM: on our prior's modules, or its own stock copy."""
    from diffusers import DDIMScheduler, LEditsPPPipelineStableDiffusion

    scheduler = DDIMScheduler.from_config(prior.scheduler_config)
    if own_copy:
        pipe = LEditsPPPipelineStableDiffusion.from_pretrained(
            folder, scheduler=scheduler, dtype=prior.dtype, safety_checker=None, feature_extractor=None
        ).to(prior.device)
    else:
        pipe = LEditsPPPipelineStableDiffusion(
            vae=prior.vae,
            text_encoder=prior.text_encoder,
            tokenizer=prior.tokenizer,
            unet=prior.unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    add_noise = pipe.scheduler.add_noise
    # diffusers 0.42's invert indexes alphas_cumprod with a float tensor; cast it so that it runs at all.
    pipe.scheduler.add_noise = lambda x, noise, t: add_noise(x, noise, t.long())
    return pipe


def ledits_vs_leditspp(opt: Options) -> list[Row]:
    """LEDITS vs diffusers' LEDITS++, and a re-edit from the inversion cache vs a first edit."""
    from PIL import Image

    small = opt.quick and not opt.cuda
    device, dtype = pick_device(opt.device)
    if small:
        folder, label, size, steps = tiny_sd_folder(opt.workdir), "tiny random SD (DDIM)", 64, 20
    else:
        folder, label, size, steps = sd15_folder(opt.workdir), "SD 1.5-shaped random weights (DDIM)", 512, 30
    prior = with_ddim(load_prior(folder, device, dtype))
    # A stock pipeline on CUDA (its own copy, no channels-last), as case 2 compares; on CPU the same modules.
    pipe = leditspp(prior, folder, own_copy=opt.cuda)
    # LEDITS++'s invert() puts plain AttnProcessor on its UNet; ours runs with the processors it loaded with.
    processors = prior.unet.attn_processors

    regenerated = steps - round(steps * SKIP)
    their_skip = steps / regenerated - 1
    concepts = [
        Concept(WORDS[0], scale=5.0, threshold=0.9, warmup=2),
        Concept(WORDS[1], remove=True, scale=5.0, threshold=0.9, warmup=2),
    ]
    others = [dataclasses.replace(c, text=w) for c, w in zip(concepts, WORDS[2:], strict=True)]
    image = (np.random.RandomState(0).rand(size, size, 3) * 255).astype(np.uint8)

    def request(cs: list[Concept]) -> LeditsRequest:
        return LeditsRequest(
            image=image,
            concepts=cs,
            steps=steps,
            skip=SKIP,
            seed=0,
            momentum=0.0,
            threshold_over="pixel",
            device=opt.device,
        )

    def theirs() -> None:
        pipe.invert(
            image=Image.fromarray(image),
            num_inversion_steps=regenerated,
            skip=their_skip,
            generator=torch.Generator().manual_seed(0),
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

    def first() -> None:
        prior.unet.set_attn_processor(dict(processors))  # it pops from the dict
        ledits(prior, request(concepts), InversionCache())  # an empty cache: the inversion is included

    cache = InversionCache()
    flip = [False]

    def again() -> None:  # the same image with other concepts each time: only the inversion is reused
        prior.unet.set_attn_processor(dict(processors))  # it pops from the dict
        flip[0] = not flip[0]
        ledits(prior, request(others if flip[0] else concepts), cache)

    t_theirs, t_first, t_again = interleaved([theirs, first, again], opt.rounds(3, 5))
    rounds = len(t_first)
    settings = (
        f"{label}, {size}x{size}, {steps} steps, skip {SKIP} ({regenerated} regenerated; LEDITS++ "
        f"num_inversion_steps={regenerated}, skip={their_skip:g}), concepts +{concepts[0].text!r} "
        f"-{concepts[1].text!r} (scale 5, threshold 0.9, warm-up 2), no momentum, pixel threshold; "
        f"{'GPU, float16' if opt.cuda else 'CPU, float32'}; median of {rounds} rounds"
    )
    if small:
        settings += " (--quick on CPU: smaller than the GPU setting 512x512, 30 steps)"
    return [
        Row(
            "7a LEDITS vs diffusers LEditsPPPipelineStableDiffusion",
            float(np.median(t_first)),
            float(np.median(t_theirs)),
            "s",
            pair_ratio(t_first, t_theirs),
            "<= 1.0",
            f"{settings}; ours = first edit (inversion included), theirs = invert() + __call__",
        ),
        Row(
            "7b LEDITS re-edit from the inversion cache / first edit",
            float(np.median(t_again)),
            float(np.median(t_first)),
            "s",
            pair_ratio(t_again, t_first),
            "<= 0.6",
            f"same settings; the re-edit alternates between concepts +{others[0].text!r} "
            f"-{others[1].text!r} and the first pair; cached inversion {cache.nbytes / 2**20:.2f} MiB",
        ),
    ]


def large_image(opt: Options) -> list[Row]:
    """A 256x256 edit with the bundled prior: at its work size with the change carried up, against the whole
    image regenerated at full size (work_size=0); an empty inversion cache each time."""
    from noisebrush.bench.harness import bundled_or_standin
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.lab import scenes

    folder, label = bundled_or_standin(opt.workdir)
    engine = Engine()
    prior = engine.prior(str(folder), opt.device)
    work = prior.ledits_work_size or 64  # the stand-in has no noisebrush.json settings
    image = scenes.render(np.random.default_rng(0), 256).image
    concepts = [Concept("night"), Concept("moon"), Concept("day", remove=True)]

    def edit(size: int) -> None:  # the engine's path: carried up, then refined where it changed
        engine.inversions.clear()
        req = LeditsRequest(
            image=image, model=str(folder), concepts=concepts, device=opt.device, work_size=size
        )
        engine.ledits(req)

    t_small, t_full = interleaved([lambda: edit(work), lambda: edit(0)], opt.rounds(1, 3))
    return [
        Row(
            "7c LEDITS of a 256x256 image at the model's work size / at full size",
            float(np.median(t_small)),
            float(np.median(t_full)),
            "s",
            pair_ratio(t_small, t_full),
            "<= 0.25",
            f"{label}, +night +moon -day at its default steps and concept scale, work size {work}, refined at "
            f"full size where it changed, inversion included; median of {len(t_small)} rounds",
        )
    ]


CASES: dict[str, Case] = {"ledits": ledits_vs_leditspp, "ledits-large": large_image}
