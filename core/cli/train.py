"""`noisebrush train`: train a prior on the procedural scenes or on a folder of images (see core/lab/training.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noisebrush.core.engine.requests import excerpt
from noisebrush.core.errors import BadInput
from noisebrush.core.lab.network_config import PREDICTIONS, PriorConfig
from noisebrush.core.lab.train_config import LR_DECAYS, TrainConfig, config_from_json


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `train` on the main CLI's subparsers."""
    d = TrainConfig()
    p = subparsers.add_parser(
        "train",
        help="train a small pixel-space prior",
        description="Train a small text-conditioned pixel-space diffusion prior. Checkpoints (EMA weights as a "
        "loadable model folder, a sample grid, a resumable state) go to OUT/checkpoints/; running the same "
        "command again resumes from the last one.",
    )
    p.add_argument(
        "--data",
        default=d.data,
        help="'procedural' (built-in landscapes) or a folder of images; "
        "a NAME.txt beside NAME.png is that image's caption",
    )
    p.add_argument("--out", default=d.out, help=f"run folder (default {d.out})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"total optimiser steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"images per step (default {d.batch})")
    p.add_argument(
        "--size",
        type=int,
        default=d.size,
        help=f"training crop size in pixels, multiple of 8 (default {d.size})",
    )
    p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr})")
    p.add_argument(
        "--lr-decay",
        choices=LR_DECAYS,
        default=d.lr_decay,
        help="after the warm-up: keep the rate (constant, the default) or bring it to 0 at --steps (cosine)",
    )
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help=f"EMA decay (default {d.ema_decay})")
    p.add_argument(
        "--min-snr",
        type=float,
        default=d.min_snr,
        help="Min-SNR-gamma loss weighting, e.g. 5 (default 0: DDPM's unweighted loss)",
    )
    p.add_argument(
        "--prediction",
        choices=PREDICTIONS,
        default=d.prior.prediction,
        help="what the UNet predicts (default %(default)s); v_prediction gives better samples from pure noise "
        "when training is short, and can fine-tune an epsilon model (--init-from)",
    )
    p.add_argument(
        "--zero-terminal-snr",
        action="store_true",
        help="rescale the noise schedule so its last step is pure noise (Lin et al. 2024); needs "
        "--prediction v_prediction; lets samples from pure noise be as dark or bright as the data",
    )
    p.add_argument(
        "--cfg-dropout",
        type=float,
        default=d.cfg_dropout,
        help=f"share of empty prompts for classifier-free guidance (default {d.cfg_dropout})",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between checkpoints"
    )
    p.add_argument(
        "--channels",
        default=",".join(map(str, d.prior.channels)),
        help="UNet block widths, comma-separated (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of data, noise and initialisation")
    p.add_argument("--init-from", default="", help="start from this model folder's weights (fine-tuning)")
    p.add_argument(
        "--threads", type=int, default=d.threads, help="CPU threads for torch (0 = torch's default)"
    )
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        help="copy the final EMA model folder here when training ends (e.g. resources/models/mine)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A fresh config from the flags, or the run folder's saved config when resuming (only --steps may change)."""
    saved = Path(args.out) / "config.json"
    if saved.exists():
        try:
            config = config_from_json(json.loads(saved.read_text()))
        except (ValueError, TypeError, KeyError) as e:
            raise BadInput(
                f"{saved} is not a run's saved config ({type(e).__name__}: {e}); "
                "give --out a new folder, or remove the file to start afresh"
            ) from None
        config.steps = args.steps
        config.threads, config.device = args.threads, args.device
        return config
    config = TrainConfig(
        out=args.out,
        data=args.data,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        lr=args.lr,
        lr_decay=args.lr_decay,
        ema_decay=args.ema_decay,
        min_snr=args.min_snr,
        cfg_dropout=args.cfg_dropout,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        init_from=args.init_from,
        threads=args.threads,
        device=args.device,
    )
    config.prior.channels = parse_channels(args.channels)
    config.prior.prediction = args.prediction
    config.prior.zero_terminal_snr = args.zero_terminal_snr
    return config


def check_args(args: argparse.Namespace) -> None:
    """Every flag checked before torch loads or a folder is made; BadInput says what is allowed."""
    if args.size < 8 or args.size % 8:
        raise BadInput(f"--size must be a multiple of 8 (8, 16, ..., 64, ...), got {args.size}")
    for flag, value, least in (
        ("--steps", args.steps, 1),
        ("--batch", args.batch, 1),
        ("--checkpoint-every", args.checkpoint_every, 1),
        ("--threads", args.threads, 0),
    ):
        if value < least:
            raise BadInput(f"{flag} must be at least {least}, got {value}")
    if not 0.0 < args.lr < 1.0:
        raise BadInput(f"--lr must be above 0 and below 1, got {args.lr}")
    if not 0.0 <= args.ema_decay < 1.0:
        raise BadInput(f"--ema-decay must be in [0, 1), got {args.ema_decay}")
    if not 0.0 <= args.cfg_dropout <= 1.0:
        raise BadInput(f"--cfg-dropout must be in [0, 1], got {args.cfg_dropout}")
    if not 0.0 <= args.min_snr < float("inf"):
        raise BadInput(f"--min-snr must be 0 (off) or a positive number, got {args.min_snr}")
    parse_channels(args.channels)
    if args.zero_terminal_snr and args.prediction != "v_prediction":
        raise BadInput(
            "--zero-terminal-snr needs --prediction v_prediction: epsilon is undefined at abar = 0"
        )
    if args.data != "procedural" and not Path(args.data).is_dir():
        raise BadInput(f"--data must be 'procedural' or a folder of images; {args.data} is not a folder")
    if args.init_from and not Path(args.init_from).is_dir():
        raise BadInput(f"--init-from must be a model folder; {args.init_from} is not a folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise BadInput(f"--out {args.out} is a file; it must be a folder")
    from noisebrush.core.cli.run import check_writable  # numpy and Pillow: not for the parser's start-up

    check_writable(Path(args.out), "--out folder")
    if args.export is not None:
        if args.export.exists() and not args.export.is_dir():
            raise BadInput(f"--export {args.export} is a file; it must be a (model) folder")
        check_writable(args.export, "--export folder")


def parse_channels(text: str) -> tuple[int, ...]:
    """UNet block widths: positive multiples of the prior's 16 norm groups, e.g. '32,64,96,128'."""
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        channels = ()
    groups = PriorConfig().norm_groups
    if not channels or any(c < groups or c % groups for c in channels):
        raise BadInput(
            f"--channels must be comma-separated multiples of {groups}, e.g. '32,64,96,128'; got {excerpt(text)!r}"
        )
    return channels


def run(args: argparse.Namespace) -> int:
    # torch and diffusers load here, not at import: every other command's start-up would pay for them
    from noisebrush.core.lab.network import export_prior
    from noisebrush.core.lab.training import train

    check_args(args)
    config = config_from_args(args)
    result = train(config, progress=not args.no_progress)
    print(
        f"step {result.step}, loss {result.loss:.4f}, {result.seconds:.0f} s; last checkpoint: {result.last_checkpoint}"
    )
    if args.export and result.last_checkpoint:
        export_prior(result.last_checkpoint / "prior", args.export)
        print(f"exported {args.export}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: `python -m noisebrush.core.cli.train ...`."""
    parser = argparse.ArgumentParser(prog="noisebrush")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
