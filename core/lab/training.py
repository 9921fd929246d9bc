"""Training of a pixel-space prior: DDPM's simple epsilon loss (Ho et al. 2020, Algorithm 1), or its v form
(Salimans & Ho 2022), with classifier-free dropout of the prompt (Ho & Salimans 2022), an EMA of the weights,
periodic resumable checkpoints and a sample grid per checkpoint.

The data come from the procedural scenes (`core/lab/scenes.py`) or from a folder of the user's images (captions from
an optional `name.txt` beside each image). Every batch and every noise draw is a function of (seed, step), so an
interrupted run resumed from its last checkpoint continues with exactly the batches it would have seen.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from noisebrush.core.errors import BadInput
from noisebrush.core.lab.network import Prior, build_prior, prompt_context, sample, save_prior
from noisebrush.core.lab.train_config import LR_DECAYS, TrainConfig, config_json
from noisebrush.core.lab.training_data import captions, make_data, to_tensor

# ---------------------------------------------------------------- training


def diffusion_loss(
    prior: Prior, x0: torch.Tensor, prompts: list[str], generator: torch.Generator, min_snr: float = 0.0
) -> torch.Tensor:
    """DDPM's simple loss: || eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, c) ||^2, t uniform; for a
    v-prediction prior the target is v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 instead.

    With `min_snr` = gamma > 0 each sample is weighted by min(SNR(t), gamma) / SNR(t) (epsilon) or
    min(SNR(t), gamma) / (SNR(t) + 1) (v), the same weight on the implied x0 error: the nearly clean
    timesteps, whose many small gradients otherwise pull against the noisy ones where layout and colour are
    decided, count less. Hang et al. (2023) report about 3x faster convergence; it matters on a CPU budget.
    """
    n = x0.shape[0]
    t = torch.randint(0, prior.scheduler.config.num_train_timesteps, (n,), generator=generator)
    eps = torch.randn(x0.shape, generator=generator)
    t, eps = t.to(x0.device), eps.to(x0.device)
    xt = prior.scheduler.add_noise(x0, eps, t)
    context = prompt_context(prior, prompts)
    target = prior.scheduler.get_velocity(x0, eps, t) if _predicts_v(prior) else eps
    per_sample = F.mse_loss(prior.unet(xt, t, context).sample, target, reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * snr_weights(prior, t, min_snr)).mean()


def snr_weights(prior: Prior, t: torch.Tensor, min_snr: float) -> torch.Tensor:
    """min(SNR, gamma) / SNR (epsilon) or / (SNR + 1) (v) per timestep; all ones when gamma is 0.

    On a zero terminal SNR schedule the v weight is min(SNR + 1, gamma) / (SNR + 1) instead: the paper's
    weight is 0 at SNR = 0, so the step at T, which that schedule exists to teach (the picture's overall
    brightness and colour from pure noise), would never be learned. This one is the plain v loss up to
    SNR = gamma - 1 and caps the implied x0 weight at gamma above it."""
    if min_snr <= 0:
        return torch.ones(t.shape, device=t.device)
    abar = prior.scheduler.alphas_cumprod.to(t.device)[t]
    snr = abar / (1 - abar)
    if not _predicts_v(prior):
        return torch.clamp(snr, max=min_snr) / snr
    floor = 1.0 if prior.scheduler.config.get("rescale_betas_zero_snr", False) else 0.0
    return torch.clamp(snr + floor, max=min_snr) / (snr + 1)


def _predicts_v(prior: Prior) -> bool:
    return prior.scheduler.config.prediction_type == "v_prediction"


class Ema:
    """Exponential moving average of the weights (Polyak averaging); the decay ramps up as (1 + n) / (10 + n)
    so that early, short runs are not dominated by the random initialisation."""

    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.modules = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
        self.decay = decay

    @torch.no_grad()
    def update(self, modules: list[torch.nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for ema, live in zip(self.modules, modules, strict=True):
            for pe, pl in zip(ema.parameters(), live.parameters(), strict=True):
                pe.lerp_(pl.detach(), 1 - d)

    def state_dict(self) -> list[dict]:
        return [m.state_dict() for m in self.modules]

    def load_state_dict(self, states: list[dict]) -> None:
        for m, s in zip(self.modules, states, strict=True):
            m.load_state_dict(s)


@dataclass
class TrainResult:
    step: int
    loss: float
    seconds: float
    last_checkpoint: Path | None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(
    config: TrainConfig, progress: bool = True, on_checkpoint: Callable[[Path], None] | None = None
) -> TrainResult:
    """Train (or resume) the prior described by `config`; checkpoints go to `config.out/checkpoints/step-N/`."""
    if config.lr_decay not in LR_DECAYS:
        raise BadInput(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {config.lr_decay!r}")
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    data = make_data(config)
    config.prior.vocabulary = data.vocabulary
    config.prior.sample_size = config.size
    torch.manual_seed(config.seed)  # the initial weights, so a seed names a whole run
    prior = build_prior(config.prior, out / "build")
    if config.init_from:
        _init_from(prior, Path(config.init_from))
    prior.to(device)
    params = [*prior.unet.parameters(), *prior.text_encoder.parameters()]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    ema = Ema([prior.unet, prior.text_encoder], config.ema_decay)
    step = _resume(out, prior, optimiser, ema)
    (out / "config.json").write_text(json.dumps(config_json(config), indent=2) + "\n")

    stop = _StopFlag()
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train", dynamic_ncols=True)
    started, loss_avg, last = time.time(), float("nan"), None
    prior.unet.train()
    prior.text_encoder.train()
    with stop:
        while step < config.steps and not stop.raised:
            rng = np.random.default_rng([config.seed, step])
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            images, words = data.batch(rng)
            prompts = captions(words, rng, config.word_keep, config.cfg_dropout)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(config, step)
            loss = diffusion_loss(prior, to_tensor(images).to(device), prompts, generator, config.min_snr)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            step += 1
            ema.update([prior.unet, prior.text_encoder], step)
            loss_avg = loss.item() if loss_avg != loss_avg else 0.98 * loss_avg + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_avg:.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                last = save_checkpoint(out, step, config, prior, optimiser, ema, loss_avg)
                if on_checkpoint:
                    on_checkpoint(last)
        if stop.raised and (last is None or not last.name.endswith(f"{step:07d}")):
            last = save_checkpoint(out, step, config, prior, optimiser, ema, loss_avg)
    bar.close()
    return TrainResult(step, loss_avg, time.time() - started, last)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The rate for optimiser step `step` (0-based): a linear warm-up, then constant or a cosine decay to 0.

    A constant rate is what a run that may be extended wants; decaying it at the end of a run (or in a
    fine-tune started with --init-from) settles the weights in the basin the constant rate hovers over.
    """
    warm = min(1.0, (step + 1) / max(config.warmup, 1))
    if config.lr_decay == "constant" or step < config.warmup:
        return config.lr * warm
    span = max(config.steps - config.warmup, 1)
    progress = min(1.0, (step - config.warmup) / span)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_prior(prior: Prior, ema: Ema) -> Prior:
    return Prior(ema.modules[0], ema.modules[1], prior.tokenizer, prior.scheduler, dict(prior.meta))


def save_checkpoint(
    out: Path,
    step: int,
    config: TrainConfig,
    prior: Prior,
    optimiser: torch.optim.Optimizer,
    ema: Ema,
    loss: float,
) -> Path:
    """Write `step-N/prior/` (EMA weights, a loadable model folder), `step-N/samples.png` and the resumable
    `step-N/state.pt`; older states beyond `keep_states` are deleted, their EMA priors kept."""
    folder = out / "checkpoints" / f"step-{step:07d}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    averaged = ema_prior(prior, ema)
    save_prior(
        averaged,
        tmp / "prior",
        step=step,
        train_loss=round(loss, 5),
        seed=config.seed,
        default_steps=config.default_steps,
        default_guidance=config.default_guidance,
        good_sizes=f"trained at {config.size}x{config.size}; any multiple of 8 runs",
    )
    state = {
        "step": step,
        "unet": prior.unet.state_dict(),
        "text_encoder": prior.text_encoder.state_dict(),
        "optimiser": optimiser.state_dict(),
        "ema": ema.state_dict(),
    }
    torch.save(state, tmp / "state.pt")
    if config.sample_steps > 0:
        sample_grid(averaged, config, tmp / "samples.png")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # a checkpoint exists only once complete, so a crash mid-write never breaks resuming
    for old in sorted((out / "checkpoints").glob("step-*/state.pt"))[: -config.keep_states]:
        old.unlink()
    return folder


def sample_grid(prior: Prior, config: TrainConfig, path: Path, columns: int = 8) -> None:
    """One row of unconditional samples, then one sample per vocabulary word (same seed every checkpoint)."""
    prompts = [""] * columns + list(prior.meta.get("vocabulary", []))
    generator = torch.Generator().manual_seed(config.seed)
    was_training = prior.unet.training
    prior.unet.eval()
    images = sample(
        prior, prompts, config.size, config.size, config.sample_steps, config.sample_guidance, generator
    )
    prior.unet.train(was_training)
    pixels = (images.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    rows = -(-len(pixels) // columns)
    grid = np.full((rows * config.size, columns * config.size, 3), 255, np.uint8)
    for i, im in enumerate(pixels):
        r, c = divmod(i, columns)
        grid[r * config.size : (r + 1) * config.size, c * config.size : (c + 1) * config.size] = im
    Image.fromarray(grid).save(path)
    (path.with_suffix(".txt")).write_text("\n".join(p or "(unconditional)" for p in prompts) + "\n")


def latest_state(out: Path) -> Path | None:
    states = sorted((out / "checkpoints").glob("step-*/state.pt"))
    return states[-1] if states else None


def _resume(out: Path, prior: Prior, optimiser: torch.optim.Optimizer, ema: Ema) -> int:
    path = latest_state(out)
    if path is None:
        return 0
    state = torch.load(path, map_location=prior.device, weights_only=True)
    prior.unet.load_state_dict(state["unet"])
    prior.text_encoder.load_state_dict(state["text_encoder"])
    optimiser.load_state_dict(state["optimiser"])
    ema.load_state_dict(state["ema"])
    return int(state["step"])


def _init_from(prior: Prior, folder: Path) -> None:
    """Start from another model's weights; parameters it lacks (e.g. a newly added embedding) stay fresh."""
    from safetensors.torch import load_file

    for module, part in ((prior.unet, "unet"), (prior.text_encoder, "text_encoder")):
        found = sorted((folder / part).glob("*.safetensors"))
        if len(found) != 1:
            raise BadInput(
                f"--init-from {folder}: expected one {part}/*.safetensors, found {len(found)}; give a model "
                "folder such as runs/NAME/checkpoints/step-N/prior or resources/models/default"
            )
        weights = found[0]
        missing, unexpected = module.load_state_dict(load_file(str(weights)), strict=False)
        if unexpected:
            raise BadInput(f"{folder / part} has weights this model does not: {unexpected[:5]}")


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag so the loop can write a checkpoint before exiting."""

    def __init__(self) -> None:
        self.raised = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.raised = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
