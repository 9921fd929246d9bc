"""The sizes and training choices of the bundled prior's network, kept apart from torch and diffusers so the
command line can show and check them without importing either."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PREDICTIONS = ("epsilon", "v_prediction")


@dataclass
class PriorConfig:
    """Sizes of the prior. The defaults make a UNet call on a 256x256 image cost about 0.3 s on two CPU cores."""

    vocabulary: list[str] = field(default_factory=list)
    sample_size: int = 64  # training resolution; the UNet is fully convolutional
    channels: tuple[int, ...] = (32, 64, 96, 128)
    layers_per_block: int = 1
    attention_levels: int = 1  # cross-attention only in the lowest-resolution levels, where it is cheap
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 2
    max_words: int = 16  # tokenizer length including the start and end tokens
    norm_groups: int = 16
    # Pooled prompt added to the time embedding (diffusers' addition_embed_type="text"), so every ResNet block
    # sees the prompt: global concepts (mood, light) need that more than they need cross-attention.
    global_text: bool = True
    train_timesteps: int = 1000
    # What the UNet predicts: "epsilon" (DDPM) or "v_prediction" (Salimans & Ho 2022). With epsilon, a pixel
    # model's x0 estimate at high noise is (x_t - sqrt(1 - abar) eps) / sqrt(abar), its error amplified up to
    # 150x at t = 999, so an undertrained model's samples from pure noise clip to flat, saturated colour; v
    # predicts x0 directly there.
    prediction: str = "epsilon"
    # Rescale the betas so that abar_T = 0 (Lin et al. 2024). With the linear schedule abar_T = 4e-5: x_T still
    # holds 0.6 % of the image, which at 64x64 is as large as the mean of the noise, so a model learns to read the
    # picture's overall brightness from it and, sampling from pure noise, cannot make night scenes. Needs
    # v-prediction (epsilon says nothing about x0 at abar = 0); sampling then starts at T ("trailing" steps).
    zero_terminal_snr: bool = False

    def to_json(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_json(cls, data: dict) -> PriorConfig:
        # Runs saved before global_text existed were trained without it.
        return cls(**{"global_text": False, **data, "channels": tuple(data["channels"])})
