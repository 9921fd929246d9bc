"""What a training run of the bundled prior needs, torch-free so the command line can parse and check it
without loading torch; written to `out/config.json` so a resume uses the same settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from noisebrush.core.lab.network_config import PriorConfig

LR_DECAYS = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Everything a training run needs; written to `out/config.json` so a resume uses the same settings."""

    out: str = "runs/prior"
    data: str = "procedural"  # or a folder of images
    size: int = 64
    batch: int = 16
    steps: int = 4000
    lr: float = 5e-4
    warmup: int = 100
    lr_decay: str = "constant"  # or "cosine": from lr after the warm-up down to 0 at `steps`
    ema_decay: float = 0.998
    min_snr: float = 0.0  # > 0: Min-SNR-gamma loss weights (Hang et al. 2023), e.g. 5; 0: DDPM's plain loss
    cfg_dropout: float = 0.15  # share of empty prompts, so the unconditional prediction is learned too
    word_keep: float = 0.6  # each true concept word is kept in the caption with this probability
    crop_share: float = 0.3  # procedural only: share of crops from scenes rendered at twice the size
    checkpoint_every: int = 400
    keep_states: int = 2  # full optimiser states kept for resuming; EMA priors of all checkpoints are kept
    sample_steps: int = 20
    sample_guidance: float = 3.0
    # Written into every checkpoint's noisebrush.json: what the engine uses when a request leaves them unset.
    default_steps: int = 50
    default_guidance: float = 3.0
    seed: int = 0
    init_from: str = ""  # a model folder whose weights start the run (missing parts keep their fresh init)
    threads: int = 0  # 0: leave torch's default
    device: str = "auto"
    prior: PriorConfig = field(default_factory=PriorConfig)


def config_json(config: TrainConfig) -> dict:
    data = asdict(config)
    data["prior"] = config.prior.to_json()
    return data


def config_from_json(data: dict) -> TrainConfig:
    data = dict(data)
    prior = PriorConfig.from_json(data.pop("prior"))
    return TrainConfig(**data, prior=prior)
