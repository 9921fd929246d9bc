"""The bundled prior's components: a small pixel-space text-conditioned UNet, a tiny CLIP text encoder over a
closed vocabulary, and a DDPM schedule, built from one config and written as a diffusers-style folder.

Layout of the folder (docs/CONTRACT.md): `model_index.json`, `unet/`, `text_encoder/`, `tokenizer/`, `scheduler/`,
`noisebrush.json`. Every concept word is a single token: the tokenizer's BPE merges are written here so that each
word's characters merge into exactly one token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from noisebrush.core.engine.priors import rescale_guidance
from noisebrush.core.errors import BadInput
from noisebrush.core.lab.network_config import PREDICTIONS, PriorConfig

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class Prior:
    """The loaded components; `meta` is the folder's noisebrush.json."""

    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: DDPMScheduler
    meta: dict

    def to(self, device: torch.device | str) -> Prior:
        self.unet.to(device)
        self.text_encoder.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device


def build_prior(config: PriorConfig, workdir: Path) -> Prior:
    """Fresh, randomly initialised components; the tokenizer files are written under `workdir`."""
    tokenizer = write_tokenizer(config.vocabulary, workdir / "tokenizer", config.max_words)
    scheduler = make_scheduler(config.train_timesteps, config.prediction, config.zero_terminal_snr)
    meta = {"vocabulary": list(config.vocabulary), "prior_config": config.to_json()}
    return Prior(make_unet(config), make_text_encoder(config, len(tokenizer)), tokenizer, scheduler, meta)


def make_unet(config: PriorConfig) -> UNet2DConditionModel:
    """UNet2DConditionModel, 3 channels in and out, cross-attention only in the last `attention_levels` levels.

    `only_cross_attention` replaces the transformer's self-attention by a second cross-attention to the
    prompt, so the cost stays linear in the number of pixels at any image size.
    """
    levels = len(config.channels)
    plain = levels - config.attention_levels
    unet = UNet2DConditionModel(
        sample_size=config.sample_size,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(config.channels),
        layers_per_block=config.layers_per_block,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * config.attention_levels,
        up_block_types=("CrossAttnUpBlock2D",) * config.attention_levels + ("UpBlock2D",) * plain,
        mid_block_type="UNetMidBlock2DCrossAttn",
        cross_attention_dim=config.text_width,
        attention_head_dim=8,
        norm_num_groups=config.norm_groups,
        only_cross_attention=True,
        addition_embed_type="text" if config.global_text else None,
        addition_embed_type_num_heads=config.text_heads,
    )
    if config.global_text:
        quiet_global_text(unet)
    return unet


def quiet_global_text(unet: UNet2DConditionModel) -> None:
    """Zero the pooled-prompt embedding's output scale: the UNet starts as if it had none, so it can also be
    grafted onto a UNet trained without one (`TrainConfig.init_from`) without disturbing it."""
    torch.nn.init.zeros_(unet.add_embedding.norm2.weight)


def make_text_encoder(config: PriorConfig, vocab_size: int) -> CLIPTextModel:
    """A tiny CLIPTextModel; its last hidden states are the UNet's cross-attention context."""
    text_config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=config.text_width,
        intermediate_size=config.text_width * 2,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=config.max_words,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=config.text_width,
    )
    return CLIPTextModel(text_config)


def make_scheduler(
    train_timesteps: int = 1000, prediction: str = "epsilon", zero_terminal_snr: bool = False
) -> DDPMScheduler:
    """DDPM with the linear betas 1e-4..0.02 of Ho et al. and SDEdit's official VP runner."""
    if prediction not in PREDICTIONS:
        raise BadInput(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
    if zero_terminal_snr and prediction != "v_prediction":
        raise BadInput("a zero terminal SNR schedule needs v_prediction: epsilon is undefined at abar = 0")
    return DDPMScheduler(
        rescale_betas_zero_snr=zero_terminal_snr,
        num_train_timesteps=train_timesteps,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        prediction_type=prediction,
        clip_sample=True,
        variance_type="fixed_small",
    )


def write_tokenizer(vocabulary: list[str], folder: Path, max_words: int = 16) -> CLIPTokenizer:
    """Write a CLIP BPE tokenizer (vocab.json, merges.txt) in which every vocabulary word is one token.

    Each word gets the left-to-right merge chain w0+w1, (w0w1)+w2, ... ending in its `</w>` form; single
    letters stay in the vocabulary so any other text still tokenizes (and is rejected by the engine's check).
    """
    folder.mkdir(parents=True, exist_ok=True)
    tokens = [BOS, EOS, *_LETTERS, *(c + "</w>" for c in _LETTERS)]
    merges: list[tuple[str, str]] = []
    for word in sorted(vocabulary, key=len):
        parts = [*word[:-1], word[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            if (left, right) not in merges:
                merges.append((left, right))
            left = left + right
            if left not in tokens:
                tokens.append(left)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS})
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": max_words,
                "bos_token": BOS,
                "eos_token": EOS,
                "unk_token": EOS,
                "pad_token": EOS,
                "do_lower_case": True,
            },
            indent=1,
        )
    )
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    for word in vocabulary:
        ids = tokenizer(word, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise RuntimeError(f"vocabulary word {word!r} tokenizes to {len(ids)} tokens, expected 1")
    return tokenizer


@torch.no_grad()
def encode_prompts(prior: Prior, prompts: list[str]) -> torch.Tensor:
    """(B, max_words, text_width) cross-attention context of each prompt; "" is the unconditional one."""
    return prompt_context(prior, prompts)


def prompt_context(prior: Prior, prompts: list[str]) -> torch.Tensor:
    """As `encode_prompts`, with gradients, for training the text encoder with the UNet."""
    ids = prior.tokenizer(
        prompts,
        padding="max_length",
        max_length=prior.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(prior.device)
    return prior.text_encoder(ids).last_hidden_state


# The scheduler a saved prior is sampled with. The noise schedule is the training one (DDPM's); the update is
# DDIM's with eta = 0. Measured on prior v3 step 3000 (docs/PRIOR.md): unconditional samples KID 238 with DDIM
# against 640 with DDPM's ancestral steps (642 at 100 steps, so not a matter of step count), SDEdit at t0 = 0.5
# KID 48.8 against 57.4. An undertrained pixel model's noise estimates are least accurate at high noise, and
# ancestral sampling re-injects fresh noise there at every step.
SAMPLER = DDIMScheduler
# Lin et al. 2024 pair a zero terminal SNR schedule with guidance rescaling at phi = 0.7; without it v5's
# training previews showed night prompts as coloured noise at the preview guidance of 3 (docs/PRIOR.md).
ZERO_SNR_RESCALE = 0.7


def sampler_for(config: dict) -> DDIMScheduler:
    """The sampler of record for a training schedule's config; a zero terminal SNR schedule starts at T."""
    zero_snr = config.get("rescale_betas_zero_snr")
    spacing = "trailing" if zero_snr else config.get("timestep_spacing", "leading")
    return SAMPLER.from_config(config, timestep_spacing=spacing)


def write_sampler(config: dict, folder: Path) -> None:
    """`folder/scheduler/` as the sampler of record, from the training schedule's config."""
    sampler_for(config).save_pretrained(folder / "scheduler")


def save_prior(prior: Prior, folder: Path, **meta: object) -> None:
    """Write the diffusers-style folder; extra keyword arguments go into noisebrush.json."""
    folder.mkdir(parents=True, exist_ok=True)
    prior.unet.save_pretrained(folder / "unet", safe_serialization=True)
    prior.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    # Our own vocab.json/merges.txt (readable, and loadable by the slow and the fast CLIPTokenizer alike).
    write_tokenizer(
        list(prior.meta.get("vocabulary", [])), folder / "tokenizer", prior.tokenizer.model_max_length
    )
    write_sampler(prior.scheduler.config, folder)
    index = {
        "_class_name": "NoiseBrushPrior",
        "_diffusers_version": _diffusers_version(),
        "unet": ["diffusers", "UNet2DConditionModel"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", SAMPLER.__name__],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    prior.meta = {**prior.meta, **meta}
    (folder / "noisebrush.json").write_text(json.dumps(prior.meta, indent=2) + "\n")


def export_prior(source: Path, target: Path, **settings: object) -> None:
    """Copy a model folder (e.g. a checkpoint's EMA prior) to `target`, merging `settings` into noisebrush.json
    (default_steps, default_guidance, good_sizes, ...). Weights are copied byte for byte."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for part in ("unet", "text_encoder", "tokenizer"):
        shutil.rmtree(target / part, ignore_errors=True)
        shutil.copytree(source / part, target / part)
    shutil.rmtree(target / "scheduler", ignore_errors=True)
    write_sampler(DDPMScheduler.load_config(source / "scheduler"), target)
    index = json.loads((source / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", SAMPLER.__name__]
    (target / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    meta = json.loads((source / "noisebrush.json").read_text())
    (target / "noisebrush.json").write_text(json.dumps({**meta, **settings}, indent=2) + "\n")


def load_prior(folder: Path, device: str | torch.device = "cpu") -> Prior:
    """Read a folder written by `save_prior` (or any folder of the same layout)."""
    folder = Path(folder)
    meta_path = folder / "noisebrush.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    prior = Prior(
        UNet2DConditionModel.from_pretrained(folder / "unet"),
        CLIPTextModel.from_pretrained(folder / "text_encoder"),
        CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        DDPMScheduler.from_pretrained(folder / "scheduler"),
        meta,
    )
    prior.unet.eval()
    prior.text_encoder.eval()
    return prior.to(device)


@torch.no_grad()
def sample(
    prior: Prior,
    prompts: list[str],
    height: int = 64,
    width: int = 64,
    steps: int = 50,
    guidance: float = 3.0,
    generator: torch.Generator | None = None,
    rescale: float | None = None,
) -> torch.Tensor:
    """Deterministic DDIM sampling (Song et al. 2021, eq. 12 with eta = 0), the saved prior's sampler, with
    classifier-free guidance (Ho & Salimans 2022): out = out_uncond + guidance * (out_cond - out_uncond),
    rescaled by `rescale` (None: the prior's `guidance_rescale`, else ZERO_SNR_RESCALE on a zero terminal SNR
    schedule, as the engine samples an exported prior). Returns (B, 3, H, W) in [0, 1].

    Used for training previews and as a reference; the app samples through the engine.
    """
    if rescale is None:
        zero_snr = bool(prior.scheduler.config.get("rescale_betas_zero_snr"))
        rescale = float(prior.meta.get("guidance_rescale", ZERO_SNR_RESCALE if zero_snr else 0.0))
    device = prior.device
    ddim = sampler_for(prior.scheduler.config)
    ddim.set_timesteps(steps)
    context = encode_prompts(prior, ["", *prompts])
    uncond, cond = context[:1].expand(len(prompts), -1, -1), context[1:]
    x = torch.randn((len(prompts), 3, height, width), generator=generator).to(device)
    for t in ddim.timesteps:
        out = prior.unet(torch.cat([x, x]), t, torch.cat([uncond, cond])).sample
        out_u, out_c = out.chunk(2)  # epsilon or v: guidance is linear in either
        guided = rescale_guidance(out_u + guidance * (out_c - out_u), out_c, rescale)
        x = ddim.step(guided, t, x).prev_sample
    return ((x + 1) / 2).clamp(0, 1)


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__
