"""The SDEdit benchmark cases: engine overhead, diffusers img2img, selection cost, previews, memory.

Each case is `(Options) -> list[Row]`; `CASES` names them for `noisebrush bench`.
"""

from __future__ import annotations

import json
import statistics
import time
from functools import partial
from typing import Any

import numpy as np
import torch

from noisebrush.bench.harness import (
    Case,
    Options,
    Row,
    bundled_or_standin,
    sd15_folder,
    side_by_side,
    sync,
    timed,
)
from noisebrush.bench.memory import probe
from noisebrush.core.engine.engine import Engine
from noisebrush.core.engine.progress import Progress
from noisebrush.core.engine.requests import SDEditRequest

MB = 1024 * 1024


def _guide(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A painter's rough: flat colour blocks with a little noise, as SDEdit's stroke guides look."""
    rng = np.random.default_rng(seed)
    g = np.empty((h, w, 3), np.uint8)
    g[: h // 2] = (90, 140, 220)
    g[h // 2 :] = (60, 130, 50)
    g[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = (200, 200, 210)
    return np.clip(g.astype(np.int16) + rng.integers(-8, 9, g.shape), 0, 255).astype(np.uint8)


def _first_word(engine: Engine, model: str, device: str) -> str:
    vocab = engine.prior(model, device).vocabulary
    return vocab[0] if vocab else "a house"


# -- 1. engine overhead ------------------------------------------------------------------------------
def overhead(opt: Options) -> list[Row]:
    """SDEdit wall time over the time spent inside the UNet calls it makes.

    The calls are timed inside the same run (forward hooks), so whatever load the machine has hits both sides
    of the ratio alike; replaying the calls in a second run instead put the ratio anywhere in 0.85-1.15 on a
    shared 2-core machine. The ratio is the median over runs.
    """
    path, label = bundled_or_standin(opt.workdir)
    model = str(path)
    engine = Engine()
    size = 128 if opt.quick else 512
    req = SDEditRequest(
        guide=_guide(size, size),
        model=model,
        strength=0.5,
        steps=10 if opt.quick else 20,
        prompt=_first_word(engine, model, opt.device),
        device=opt.device,
    )
    unet = engine.prior(model, opt.device).unet
    inside: list[float] = []
    started: list[float] = []

    def enter(*_: Any) -> None:
        sync()
        started.append(time.perf_counter())

    def leave(*_: Any) -> None:
        sync()
        inside.append(time.perf_counter() - started.pop())

    engine.sdedit(req)  # warm-up
    handles = [unet.register_forward_pre_hook(enter), unet.register_forward_hook(leave)]
    walls, models, calls = [], [], 0
    try:
        for _ in range(3 if opt.quick else 5):
            inside.clear()
            walls.append(timed(lambda: engine.sdedit(req)))
            models.append(sum(inside))
            calls = len(inside)
    finally:
        for h in handles:
            h.remove()
    ratio = statistics.median(w / m for w, m in zip(walls, models, strict=True))
    return [
        Row(
            "1 engine overhead: SDEdit / the UNet calls inside it",
            statistics.median(walls),
            statistics.median(models),
            "s",
            ratio,
            "<= 1.05",
            f"{label}; {size}x{size}, {calls} UNet calls (batch 2, guidance), timed by forward hooks in the same "
            f"run; median of {len(walls)} runs",
        )
    ]


# -- 2. diffusers img2img ----------------------------------------------------------------------------
def vs_diffusers(opt: Options) -> list[Row]:
    """The same SD 1.5-shaped weights, settings and seed through StableDiffusionImg2ImgPipeline."""
    from PIL import Image

    folder = sd15_folder(opt.workdir)
    model = str(folder)
    engine = Engine(precision="float32")  # the stock pipeline runs in float32 on a CPU: same arithmetic
    prior = engine.prior(model, opt.device)
    small = opt.quick and not opt.cuda
    size, steps = (128, 10) if small else (512, 30)
    guide = _guide(size, size)
    prompt = "a red barn in a field"
    peer_pipe = stock_img2img(folder, prior.dtype, prior.device)
    image = Image.fromarray(guide)

    def peer() -> None:
        peer_pipe(
            prompt,
            image=image,
            strength=0.6,
            num_inference_steps=steps,
            guidance_scale=7.5,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
        )

    def ours_with(eng: Engine) -> Any:
        req = SDEditRequest(
            guide=guide,
            model=model,
            strength=0.6,
            steps=steps,
            guidance=7.5,
            prompt=prompt,
            device=opt.device,
        )
        return lambda: eng.sdedit(req)

    pairs = 2 if opt.quick else 3
    ours, theirs, ratio = side_by_side(ours_with(engine), peer, pairs)
    where = "GPU, half precision, channels-last, SDPA" if opt.cuda else "CPU, float32"
    calls = int(steps * 0.6)
    settings = (
        f"SD 1.5-shaped random weights, {size}x{size}, strength 0.6, {steps} steps ({calls} UNet calls)"
    )
    if small:
        settings += " (--quick on CPU: smaller than the GPU setting 512x512, 30 steps)"
    rows = [
        Row(
            "2 vs diffusers StableDiffusionImg2ImgPipeline",
            ours,
            theirs,
            "s",
            ratio,
            "<= 0.8" if opt.cuda else "<= 1.0",
            f"{settings}, guidance 7.5; {where}",
        )
    ]
    if opt.compile:
        compiled = Engine(compile=True, precision="float32")
        run = ours_with(compiled)
        start = time.perf_counter()
        run()  # compiles
        first = time.perf_counter() - start
        c_ours, c_theirs, c_ratio = side_by_side(run, peer, pairs, warmup=0)
        rows.append(
            Row(
                "2b vs diffusers, opt-in torch.compile",
                c_ours,
                c_theirs,
                "s",
                c_ratio,
                "<= 0.8" if opt.cuda else "<= 1.0",
                f"same settings; first run incl. compilation {first:.1f} s",
            )
        )
    return rows


# -- 3. cost follows the selection --------------------------------------------------------------------
def selection(opt: Options) -> list[Row]:
    """A 256x256 selection on a 2048x2048 canvas against the 256x256 image alone and the whole canvas."""
    path, label = bundled_or_standin(opt.workdir)
    model = str(path)
    engine = Engine()
    # --quick halves both sides (128 on 1024): the same 1/64 area, a quarter of the time
    canvas, sel = (1024, 128) if opt.quick else (2048, 256)
    steps, strength = (5, 0.4) if opt.quick else (20, 0.5)
    big = _guide(canvas, canvas)
    x = y = canvas * 7 // 16
    mask = np.zeros((canvas, canvas), np.float32)
    mask[y : y + sel, x : x + sel] = 1.0
    common: dict[str, Any] = {"model": model, "steps": steps, "strength": strength, "device": opt.device}
    # context 0: the crop is exactly the selection, so both runs give the UNet the same number of pixels
    on_canvas = SDEditRequest(guide=big, mask=mask, context=0, **common)
    alone = SDEditRequest(guide=np.ascontiguousarray(big[y : y + sel, x : x + sel]), **common)
    whole = SDEditRequest(guide=big, **common)
    ours, peer, ratio = side_by_side(
        lambda: engine.sdedit(on_canvas), lambda: engine.sdedit(alone), pairs=3 if opt.quick else 5
    )
    default_ctx = SDEditRequest(guide=big, mask=mask, **common)
    t_ctx = timed(lambda: engine.sdedit(default_ctx))
    t_whole = timed(lambda: engine.sdedit(whole))  # once: it is tens of times slower
    calls = int(steps * strength)
    return [
        Row(
            f"3a {sel} selection on {canvas} canvas / {sel} image alone",
            ours,
            peer,
            "s",
            ratio,
            "<= 1.3",
            f"{label}; {calls} UNet calls, context 0 (the crop is the selection)"
            + (
                " (--quick: 128 on 1024 instead of 256 on 2048, the same 1/64 of the area)"
                if opt.quick
                else ""
            ),
        ),
        Row(
            f"3b whole {canvas} canvas / {sel} selection on it",
            t_whole,
            t_ctx,
            "s",
            t_whole / t_ctx,
            ">= 8",
            f"selection run with the default 64 px context (a {sel + 128}x{sel + 128} crop); whole canvas timed once",
        ),
    ]


# -- 4. previews ----------------------------------------------------------------------------------
def previews(opt: Options) -> list[Row]:
    """Time spent rendering a preview at every step, as a share of the rest of the run."""
    path, label = bundled_or_standin(opt.workdir)
    model = str(path)
    engine = Engine()
    size = 128 if opt.quick else 512
    mask = np.zeros((size, size), np.float32)
    mask[size // 8 : -size // 8, size // 8 : -size // 8] = 1.0
    req = SDEditRequest(
        guide=_guide(size, size), mask=mask, model=model, strength=0.5, steps=20, device=opt.device
    )
    spent: list[float] = []

    def callback(p: Progress) -> None:
        sync()
        start = time.perf_counter()
        p.preview()
        sync()
        spent.append(time.perf_counter() - start)

    engine.sdedit(req, callback=callback)  # warm-up
    shares: list[float] = []
    walls: list[float] = []
    for _ in range(2 if opt.quick else 3):
        spent.clear()
        wall = timed(lambda: engine.sdedit(req, callback=callback))
        walls.append(wall)
        shares.append(sum(spent) / (wall - sum(spent)))
    i = int(np.argsort(shares)[len(shares) // 2])
    preview_s = walls[i] * shares[i] / (1 + shares[i])
    return [
        Row(
            "4 previews every step / run without them",
            preview_s,
            walls[i] - preview_s,
            "s",
            shares[i],
            "<= 0.03",
            f"{label}; {size}x{size}, selection with a mask, {len(spent)} previews; time inside preview() measured",
        )
    ]


# -- 0. the bundled prior's own speed (issue #3's figure) -------------------------------------------
def prior_speed(opt: Options) -> list[Row]:
    """Seconds for one SDEdit of a 256x256 stroke guide at t0 = 0.5 with the bundled prior's default steps;
    without a prompt (the paper's stroke-to-image setting) and with a one-word prompt (guidance doubles the
    batch). An absolute time, so the target applies to the 2-core CPU the prior was made for."""
    path, label = bundled_or_standin(opt.workdir)
    model = str(path)
    engine = Engine()
    prior = engine.prior(model, opt.device)
    word = _first_word(engine, model, opt.device)
    runs = opt.rounds(2, 3)
    rows = []
    for prompt in ("", word):
        req = SDEditRequest(
            guide=_guide(256, 256), model=model, strength=0.5, prompt=prompt, device=opt.device
        )
        engine.sdedit(req)  # warm-up
        seconds = statistics.median(timed(partial(engine.sdedit, req)) for _ in range(runs))
        on_cpu = not opt.cuda
        rows.append(
            Row(
                f"0 bundled prior: SDEdit 256x256, t0 0.5, {'prompt ' + repr(prompt) if prompt else 'no prompt'}"
                " (seconds)",
                seconds,
                None,
                "s",
                seconds if on_cpu and not prompt else None,
                "<= 10" if on_cpu and not prompt else "",
                f"{label}; default steps {prior.default_steps} ({prior.default_steps // 2} UNet calls"
                f"{', batch 2' if prompt else ''}); median of {runs}; "
                f"{'CPU, ' + str(torch.get_num_threads()) + ' threads' if on_cpu else 'GPU'}",
            )
        )
    return rows


# -- 5. memory ---------------------------------------------------------------------------------------
def memory(opt: Options) -> list[Row]:
    """Peak RSS of the bundled prior at 512x512 on CPU; peak VRAM of SD 1.5 at 512 in fp16 where CUDA exists."""
    path, label = bundled_or_standin(opt.workdir)
    settings = path / "noisebrush.json"
    vocab = json.loads(settings.read_text()).get("vocabulary") if settings.exists() else None
    word = vocab[0] if vocab else ""
    got = probe(
        {
            "model": str(path),
            "size": (512, 512),
            "steps": 10,
            "strength": 0.2,
            "prompt": word,
            "device": "cpu",
            "threads": opt.threads,
        }
    )
    rows = [
        Row(
            "5a peak RSS, bundled prior, 512x512, CPU",
            got["process_peak"] / MB,
            None,
            "MB",
            None,
            "",
            f"{label}; whole process incl. Python and torch; the run itself grew RSS by "
            f"{(got['run_growth'] or 0) / MB:.0f} MB",
        )
    ]
    if opt.cuda:
        rows += _vram(opt)
    return rows


def _vram(opt: Options) -> list[Row]:
    from PIL import Image

    folder = sd15_folder(opt.workdir)
    device = opt.device if opt.device != "auto" else "cuda"
    guide = _guide(512, 512)
    rows = []
    for low in (False, True):
        got = probe(
            {
                "model": str(folder),
                "size": (512, 512),
                "steps": 30,
                "strength": 0.6,
                "prompt": "a barn",
                "device": device,
                "low_memory": low,
            }
        )
        rows.append((low, got["vram_peak"]))
    pipe = stock_img2img(folder, torch.float16, device)
    torch.cuda.reset_peak_memory_stats()
    pipe("a barn", image=Image.fromarray(guide), strength=0.6, num_inference_steps=30, output_type="np")
    peer = torch.cuda.max_memory_allocated()
    del pipe
    torch.cuda.empty_cache()
    return [
        Row(
            "5b peak VRAM, SD 1.5-shaped, 512, fp16" + (" low_memory" if low else ""),
            v / MB,
            peer / MB,
            "MB",
            v / peer,
            "<= 1.0",
            "peer: stock StableDiffusionImg2ImgPipeline, same weights, fresh process for ours",
        )
        for low, v in rows
    ]


# -- 6. big canvas ---------------------------------------------------------------------------------
def big_canvas(opt: Options) -> list[Row]:
    """A 512x512 selection on a 4096x4096 RGBA canvas: RSS growth beyond the same crop run alone."""
    path, label = bundled_or_standin(opt.workdir)
    canvas, sel, ctx = 4096, 512, 64
    crop = sel + 2 * ctx
    common = {
        "model": str(path),
        "steps": 10,
        "strength": 0.2,
        "device": "cpu",
        "rgba": True,
        "context": ctx,
        "threads": opt.threads,
    }
    on_canvas = probe({**common, "size": (canvas, canvas), "box": (1800, 1800, sel, sel)})
    alone = probe({**common, "size": (crop, crop), "box": (ctx, ctx, sel, sel)})
    extra = (on_canvas["run_growth"] or 0) - (alone["run_growth"] or 0)
    float_canvas = canvas * canvas * 3 * 4
    return [
        Row(
            "6 4096 RGBA canvas, 512 selection: extra RSS / one float32 RGB canvas",
            extra / MB,
            float_canvas / MB,
            "MB",
            extra / float_canvas,
            "<= 0.5",
            f"{label}; extra = run's peak RSS growth minus that of the {crop}x{crop} crop alone; the "
            f"result itself is a uint8 RGBA canvas (0.33); one more float32 plane would add 0.33. "
            f"canvas run grew {(on_canvas['run_growth'] or 0) / MB:.0f} MB, crop alone {(alone['run_growth'] or 0) / MB:.0f} MB",
        )
    ]


CASES: dict[str, Case] = {
    "prior-speed": prior_speed,
    "overhead": overhead,
    "diffusers": vs_diffusers,
    "selection": selection,
    "previews": previews,
    "memory": memory,
    "big-canvas": big_canvas,
}


def stock_img2img(folder: Any, dtype: torch.dtype, device: Any) -> Any:
    """diffusers' img2img pipeline as users run it: its own copy of the weights, diffusers' defaults (so not
    channels-last)."""
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
        folder, dtype=dtype, safety_checker=None, feature_extractor=None
    ).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
