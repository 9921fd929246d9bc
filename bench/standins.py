"""Small random models built offline, in the layouts real checkpoints use.

Tests and benchmarks use these in place of downloads: the same diffusers classes and folder layout as the
real models (DDPM church/bedroom, NCSN++ VE, Stable Diffusion 1.x, SDXL), with tiny or real-sized configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values (the byte-level BPE alphabet)."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    order = sorted(range(256), key=lambda i: keep[i])
    return [chr(chars[i]) for i in order]


def write_clip_tokenizer(folder: Path, words: list[str] = (), max_length: int = 77) -> None:  # type: ignore[assignment]
    """A working CLIPTokenizer: the byte alphabet, its word-final forms, two specials and whole-word tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[str] = []
    for word in words:
        # merge the word left to right into one token, so each concept word is a single id
        acc = word[0]
        for i, ch in enumerate(word[1:], start=1):
            nxt = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append(f"{acc} {nxt}")
            acc = acc + nxt
            vocab.setdefault(acc, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": max_length, "tokenizer_class": "CLIPTokenizer"})
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )


def _index(folder: Path, cls: str, parts: dict[str, list[str | None]], **extra: Any) -> None:
    index: dict[str, Any] = {"_class_name": cls, "_diffusers_version": "0.30.0", **extra}
    index.update(parts)
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def tiny_ddpm(folder: Path, seed: int = 0, sample_size: int = 32) -> Path:
    """A pixel VP model shaped like google/ddpm-church-256 (UNet2DModel + DDPMScheduler), but tiny."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
    )
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True).save_pretrained(
        folder / "scheduler"
    )
    _index(
        folder,
        "DDPMPipeline",
        {"unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", "DDPMScheduler"]},
    )
    return folder


def tiny_ve(folder: Path, seed: int = 0, sample_size: int = 32) -> Path:
    """A VE score model shaped like google/ncsnpp-church-256 (fourier time embedding), but tiny."""
    from diffusers import ScoreSdeVeScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        time_embedding_type="fourier",
        norm_num_groups=8,
        flip_sin_to_cos=True,
        freq_shift=0,
    )
    unet.save_pretrained(folder / "unet")
    ScoreSdeVeScheduler(num_train_timesteps=2000, sigma_min=0.01, sigma_max=380.0).save_pretrained(
        folder / "scheduler"
    )
    _index(
        folder,
        "ScoreSdeVePipeline",
        {"unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", "ScoreSdeVeScheduler"]},
    )
    return folder


def sd_components(seed: int = 0, size: str = "tiny", scheduler: str = "PNDMScheduler") -> dict[str, Any]:
    """Stable Diffusion 1.x parts: tiny (as diffusers' get_dummy_components) or SD 1.5-shaped ("sd15")."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    if size == "sd15":
        unet = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)  # the defaults are SD 1.5's UNet
        vae = sd15_vae()
        text = CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            projection_dim=768,
            vocab_size=1000,
            max_position_embeddings=77,
        )
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=32,
        )
        vae = AutoencoderKL(
            block_out_channels=[32, 64],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
            latent_channels=4,
            norm_num_groups=32,
        )
        text = CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            pad_token_id=1,
            vocab_size=1000,
        )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(text)
    sched_cls = getattr(diffusers, scheduler)
    sched_kwargs: dict[str, Any] = dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    if scheduler == "PNDMScheduler":
        sched_kwargs.update(skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    elif scheduler == "DDIMScheduler":
        sched_kwargs.update(clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": sched_cls(**sched_kwargs)}


def tiny_sd(folder: Path, seed: int = 0, size: str = "tiny", scheduler: str = "PNDMScheduler") -> Path:
    """A Stable Diffusion 1.x diffusers folder with a tokenizer written offline."""
    parts = sd_components(seed, size, scheduler)
    for name, part in parts.items():
        part.save_pretrained(folder / name)
    write_clip_tokenizer(folder / "tokenizer")
    _index(
        folder,
        "StableDiffusionPipeline",
        {
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", type(parts["scheduler"]).__name__],
            "safety_checker": [None, None],
            "feature_extractor": [None, None],
        },
        requires_safety_checker=False,
    )
    return folder


def tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """An SDXL diffusers folder (two text encoders, pooled embeds, time ids), tiny."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=32,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=128,
        force_upcast=True,
    ).save_pretrained(folder / "vae")
    EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    ).save_pretrained(folder / "scheduler")
    cfg = dict(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
        hidden_act="gelu",
        projection_dim=32,
    )
    CLIPTextModel(CLIPTextConfig(**cfg)).save_pretrained(folder / "text_encoder")
    CLIPTextModelWithProjection(CLIPTextConfig(**cfg)).save_pretrained(folder / "text_encoder_2")
    write_clip_tokenizer(folder / "tokenizer")
    write_clip_tokenizer(folder / "tokenizer_2")
    _index(
        folder,
        "StableDiffusionXLPipeline",
        {
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        },
        force_zeros_for_empty_prompt=True,
    )
    return folder


# -- single-file export (A1111 / original LDM key names) --------------------------------------------
_LDM_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
_LDM_VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}
_LDM_VAE_ATTENTION = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
}


def _ldm_unet_prefixes(config: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(diffusers prefix, LDM prefix, suffix renames) for a UNet2DConditionModel, in the LDM block numbering.

    LDM numbers its blocks flat: input_blocks.0 is conv_in, then each level has `layers` resnet(+attention)
    blocks and one downsampler; output_blocks has `layers + 1` blocks per level, the last one carrying the
    upsampler after the resnet and the attention (index 2) or the resnet alone (index 1).
    """
    layers = config.layers_per_block
    levels = len(config.block_out_channels)
    out: list[tuple[str, str, dict[str, str]]] = [
        ("time_embedding.linear_1.", "time_embed.0.", {}),
        ("time_embedding.linear_2.", "time_embed.2.", {}),
        ("conv_in.", "input_blocks.0.0.", {}),
        ("conv_norm_out.", "out.0.", {}),
        ("conv_out.", "out.2.", {}),
        ("mid_block.resnets.0.", "middle_block.0.", _LDM_UNET_RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", {}),
        ("mid_block.resnets.1.", "middle_block.2.", _LDM_UNET_RESNET),
    ]
    for b in range(levels):
        for i in range(layers):
            n = 1 + b * (layers + 1) + i
            out.append((f"down_blocks.{b}.resnets.{i}.", f"input_blocks.{n}.0.", _LDM_UNET_RESNET))
            out.append((f"down_blocks.{b}.attentions.{i}.", f"input_blocks.{n}.1.", {}))
        out.append(
            (f"down_blocks.{b}.downsamplers.0.conv.", f"input_blocks.{(b + 1) * (layers + 1)}.0.op.", {})
        )
        has_attention = "CrossAttn" in config.up_block_types[b]
        for i in range(layers + 1):
            n = b * (layers + 1) + i
            out.append((f"up_blocks.{b}.resnets.{i}.", f"output_blocks.{n}.0.", _LDM_UNET_RESNET))
            out.append((f"up_blocks.{b}.attentions.{i}.", f"output_blocks.{n}.1.", {}))
        last = b * (layers + 1) + layers
        out.append(
            (
                f"up_blocks.{b}.upsamplers.0.conv.",
                f"output_blocks.{last}.{2 if has_attention else 1}.conv.",
                {},
            )
        )
    return out


def _ldm_vae_prefixes(config: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(diffusers prefix, LDM prefix, suffix renames) for an AutoencoderKL; the decoder's levels run reversed."""
    levels = len(config.block_out_channels)
    out: list[tuple[str, str, dict[str, str]]] = [
        ("quant_conv.", "quant_conv.", {}),
        ("post_quant_conv.", "post_quant_conv.", {}),
    ]
    for part in ("encoder", "decoder"):
        out += [
            (f"{part}.conv_in.", f"{part}.conv_in.", {}),
            (f"{part}.conv_out.", f"{part}.conv_out.", {}),
            (f"{part}.conv_norm_out.", f"{part}.norm_out.", {}),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", _LDM_VAE_RESNET),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", _LDM_VAE_RESNET),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", _LDM_VAE_ATTENTION),
        ]
    for b in range(levels):
        out.append(
            (f"encoder.down_blocks.{b}.downsamplers.0.conv.", f"encoder.down.{b}.downsample.conv.", {})
        )
        up = levels - 1 - b
        out.append((f"decoder.up_blocks.{b}.upsamplers.0.conv.", f"decoder.up.{up}.upsample.conv.", {}))
        for i in range(config.layers_per_block + 1):
            out.append(
                (f"encoder.down_blocks.{b}.resnets.{i}.", f"encoder.down.{b}.block.{i}.", _LDM_VAE_RESNET)
            )
            out.append(
                (f"decoder.up_blocks.{b}.resnets.{i}.", f"decoder.up.{up}.block.{i}.", _LDM_VAE_RESNET)
            )
    return out


def _rename(
    state: dict[str, torch.Tensor], prefixes: list[tuple[str, str, dict[str, str]]], root: str
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = next(((d, ldm, sub) for d, ldm, sub in prefixes if key.startswith(d)), None)
        if match is None:
            raise KeyError(f"no LDM name for {key}")
        d, ldm, sub = match
        rest = key[len(d) :]
        for old, new in sub.items():
            if rest.startswith(old):
                rest = new + rest[len(old) :]
                break
        out[root + ldm + rest] = value.detach().clone().contiguous()
    return out


def ldm_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """A Stable Diffusion 1.x diffusers folder's weights under the original LDM / A1111 key names."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    text = CLIPTextModel.from_pretrained(folder / "text_encoder")
    state = _rename(unet.state_dict(), _ldm_unet_prefixes(unet.config), "model.diffusion_model.")
    vae_state = _rename(vae.state_dict(), _ldm_vae_prefixes(vae.config), "first_stage_model.")
    for key, value in vae_state.items():
        if ".mid.attn_1." in key and key.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None].contiguous()  # LDM's VAE attention uses 1x1 convolutions
        state[key] = value
    for key, value in text.state_dict().items():
        if key.endswith("position_ids"):
            continue
        name = key if key.startswith("text_model.") else "text_model." + key  # transformers >= 5.6 is flat
        state["cond_stage_model.transformer." + name] = value.detach().clone().contiguous()
    return state


def export_single_file(folder: Path, out: Path) -> Path:
    """Write a tiny_sd folder as one A1111-style checkpoint: `.safetensors`, or a weights-only `.ckpt` pickle."""
    state = ldm_state_dict(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out))
    else:
        torch.save({"state_dict": state}, out)
    return out


# -- LoRA files (kohya/A1111 and diffusers/peft key layouts) -----------------------------------------
_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj")


def _lora_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    """The attention projections LoRA trainers adapt by default (kohya's and diffusers' own scripts)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.endswith(_LORA_TARGETS)
    ]


def tiny_lora(
    out: Path,
    base: Path,
    layout: str = "kohya",
    seed: int = 0,
    rank: int = 4,
    scale: float = 0.5,
    text_encoder: bool = True,
) -> Path:
    """A random LoRA `.safetensors` for the diffusers folder `base` (tiny_sd or tiny_sdxl), in the key layout of
    kohya's sd-scripts (what A1111 and Civitai files use: `lora_unet_*.lora_down.weight`, `.alpha`) or of
    diffusers/peft (`unet.*.lora_A.weight`). `scale` sets the size of the change at weight 1."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    if layout not in ("kohya", "diffusers"):
        raise ValueError(f"layout must be kohya or diffusers, got {layout!r}")
    parts: list[tuple[str, str, torch.nn.Module]] = [
        ("lora_unet", "unet", UNet2DConditionModel.from_pretrained(base / "unet"))
    ]
    sdxl = (base / "text_encoder_2").is_dir()
    if text_encoder:
        parts.append(
            (
                "lora_te1" if sdxl else "lora_te",
                "text_encoder",
                CLIPTextModel.from_pretrained(base / "text_encoder"),
            )
        )
        if sdxl:
            from transformers import CLIPTextModelWithProjection

            te2 = CLIPTextModelWithProjection.from_pretrained(base / "text_encoder_2")
            parts.append(("lora_te2", "text_encoder_2", te2))
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for kohya_root, diffusers_root, model in parts:
        for name, layer in _lora_layers(model):
            down = torch.randn(rank, layer.in_features, generator=gen) / layer.in_features**0.5
            up = torch.randn(layer.out_features, rank, generator=gen) * scale
            if layout == "kohya":
                # kohya names text encoder layers from `text_model.`; transformers >= 5.6 builds CLIPTextModel flat
                if diffusers_root != "unet" and not name.startswith("text_model."):
                    name = "text_model." + name
                key = f"{kohya_root}_{name.replace('.', '_')}"
                state[f"{key}.lora_down.weight"] = down
                state[f"{key}.lora_up.weight"] = up
                state[f"{key}.alpha"] = torch.tensor(float(rank))
            else:
                state[f"{diffusers_root}.{name}.lora_A.weight"] = down
                state[f"{diffusers_root}.{name}.lora_B.weight"] = up
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


# -- tiny autoencoders (TAESD) and ControlNets ------------------------------------------------------
def tiny_taesd(out: Path, seed: int = 0, size: str = "tiny", latent_channels: int = 4) -> Path:
    """A random `AutoencoderTiny`: "real" is TAESD's own architecture (diffusers' defaults, 8x upsampling,
    about 1.2 M parameters per half); "tiny" upsamples 2x, as tiny_sd's VAE does. A folder (config.json and
    weights, as madebyollin/taesd ships) unless `out` ends in .safetensors (diffusers' keys, one file)."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    if size == "real":
        model = AutoencoderTiny(latent_channels=latent_channels)
    else:
        model = AutoencoderTiny(
            encoder_block_out_channels=(16, 16),
            decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
            latent_channels=latent_channels,
        )
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    else:
        model.save_pretrained(out)
    return out


def tiny_controlnet(out: Path, base: Path, seed: int = 0) -> Path:
    """A random ControlNet for the diffusers folder `base` (its UNet's shape, as `ControlNetModel.from_unet`
    makes it), with its zero convolutions randomised so that it steers. A diffusers folder, or one
    .safetensors in diffusers' keys when `out` ends so."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "zero_conv" in name or "controlnet_down_blocks" in name or "controlnet_mid_block" in name:
                p.normal_(0.0, 0.05)
            elif "conv_out" in name and "cond_embedding" in name:
                p.normal_(0.0, 0.05)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out))
    else:
        net.save_pretrained(out)
    return out


def sd15_vae():  # type: ignore[no-untyped-def]
    """Stable Diffusion 1.5's VAE in shape (random weights): the one a preview or decode cost is timed on."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
