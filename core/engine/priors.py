"""A loaded diffusion prior: its denoiser, schedule, optional text encoders and optional VAE.

One class covers every family the engine supports, chosen by what the folder holds, never by name:
- a VAE means latent space (Stable Diffusion 1.x/2.x, SDXL); without one, pixel space (DDPM, NCSN++, our prior);
- a `ScoreSdeVeScheduler` means the VE-SDE; any other scheduler means VP (DDPM-type);
- text encoders mean prompts and classifier-free guidance; a second one means SDXL conditioning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from noisebrush.core.engine.plan import native_size
from noisebrush.core.engine.requests import excerpt
from noisebrush.core.engine.sources import concept_scale
from noisebrush.core.errors import BadInput

# Cheap latent -> RGB maps for previews (ComfyUI's latent_rgb_factors; REFERENCE section 4).
_SD1_RGB = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
_SDXL_RGB = [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
]
_SDXL_BIAS = [0.1084, -0.0175, -0.0011]


@dataclass
class Conditioning:
    """Prompt embeddings for one run; `cfg` says whether the batch carries the unconditional half first."""

    embeds: torch.Tensor | None = None  # (B, L, D), unconditional rows first when cfg
    added: dict[str, torch.Tensor] | None = None  # SDXL's pooled text embeds and time ids
    guidance: float = 1.0
    cfg: bool = False
    rescale: float = 0.0  # phi of guidance rescaling (Lin et al. 2024, Algorithm 2); 0 = plain guidance
    # Timesteps [lo, hi] where guidance applies (Kynkaanniemi et al. 2024); elsewhere the prompt's own
    # prediction is the output and the unconditional half is not run. None: every step.
    interval: tuple[float, float] | None = None

    def guides_at(self, t: torch.Tensor | float) -> bool:
        if not self.cfg:
            return False
        if self.interval is None:
            return True
        step = float(t.max()) if isinstance(t, torch.Tensor) else float(t)
        return self.interval[0] <= step <= self.interval[1]


def rescale_guidance(guided: torch.Tensor, text: torch.Tensor, phi: float) -> torch.Tensor:
    """Guidance rescaling (Lin et al. 2024, Algorithm 2): pull each sample's spread back towards that of the
    conditional prediction by `phi` (0 = plain guidance; 0.7 in the paper). A v-prediction prior with a zero
    terminal SNR schedule over-shoots under plain guidance: on the bundled prior's v5 run (docs/PRIOR.md) night
    prompts turn to coloured noise at guidance 3 and above. Models opt in with `guidance_rescale` in
    noisebrush.json."""
    if phi <= 0:
        return guided
    dims = tuple(range(1, guided.ndim))
    ratio = text.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True).clamp_min(1e-6)
    return torch.lerp(guided, guided * ratio, phi)


@dataclass
class Prior:
    """A diffusion prior on one device. Build with `load_prior`."""

    path: Path
    unet: Any
    scheduler_config: dict[str, Any]
    scheduler_class: Any  # a diffusers SchedulerMixin subclass
    device: torch.device
    dtype: torch.dtype
    vae: Any = None
    text_encoder: Any = None
    tokenizer: Any = None
    text_encoder_2: Any = None
    tokenizer_2: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    low_memory: bool = False  # see set_low_memory
    autocast: torch.dtype | None = None  # the UNet's compute dtype under autocast (core/engine/precision.py)
    _processors: dict[str, Any] | None = field(default=None, repr=False)
    # (x0 latents, VAE factor) -> RGB in [-1, 1]: a tiny autoencoder (core/engine/previews.py); None: linear map
    preview_decoder: Callable[[torch.Tensor, int], torch.Tensor] | None = field(default=None, repr=False)

    # -- what kind of prior this is -------------------------------------------------------------
    @property
    def is_ve(self) -> bool:
        return self.scheduler_class.__name__ == "ScoreSdeVeScheduler"

    @property
    def is_latent(self) -> bool:
        return self.vae is not None

    @property
    def takes_text(self) -> bool:
        return self.text_encoder is not None

    @property
    def is_sdxl(self) -> bool:
        return self.text_encoder_2 is not None

    @property
    def vocabulary(self) -> list[str] | None:
        vocab = self.settings.get("vocabulary")
        return list(vocab) if vocab else None

    @property
    def kind(self) -> str:
        if self.is_latent:
            return "sdxl" if self.is_sdxl else "latent-vp"
        return ("pixel-ve" if self.is_ve else "pixel-vp") + ("+text" if self.takes_text else "")

    @property
    def vae_factor(self) -> int:
        if self.vae is None:
            return 1
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def multiple(self) -> int:
        """Pixel sizes must be multiples of this (the UNet halves the resolution at each level)."""
        return self.vae_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def default_steps(self) -> int:
        if "default_steps" in self.settings:
            return int(self.settings["default_steps"])
        if self.is_latent:
            return 50  # diffusers' img2img default
        return int(self.scheduler_config.get("num_train_timesteps", 1000))  # SDEdit's official VP code

    @property
    def default_guidance(self) -> float:
        return float(self.settings.get("default_guidance", 7.5 if self.takes_text else 1.0))

    @property
    def default_concept_scale(self) -> float:
        return concept_scale(self.settings)

    @property
    def ledits_work_size(self) -> int:
        """Longest side LEDITS edits at by default (0: any size). A pixel prior trained on small images
        repeats its training-size structure when it regenerates a larger one, so it edits at its own scale."""
        return int(self.settings.get("ledits_work_size", 0))

    @property
    def work_size(self) -> int:
        """Longest side SDEdit composes at (core/engine/plan.py): the size this prior learned; 0: unknown."""
        return native_size(self.path, self.settings)

    def new_scheduler(self) -> Any:
        return self.scheduler_class.from_config(self.scheduler_config)

    # -- text ----------------------------------------------------------------------------------
    def check_words(self, text: str, what: str = "prompt") -> None:
        """A closed-vocabulary prior accepts only its own words; say which are allowed."""
        vocab = self.vocabulary
        if not vocab or not text.strip():
            return
        unknown = [w for w in re.split(r"[\s,]+", text.lower().strip()) if w and w not in vocab]
        if unknown:  # quoted in part: the error travels back with every status poll of the job
            raise BadInput(
                f"{excerpt(what)} has words this model does not know: {excerpt(', '.join(unknown))}; "
                f"it knows: {', '.join(vocab)}"
            )

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token embeddings (and SDXL's pooled embedding), as diffusers' encode_prompt computes them."""
        if not self.is_sdxl:
            ids = self._tokens(self.tokenizer, texts)
            mask = None
            if getattr(self.text_encoder.config, "use_attention_mask", False):
                mask = ids.ne(self.tokenizer.pad_token_id).to(self.device)
            return self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype), None
        embeds, pooled = [], None
        for tok, enc in ((self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)):
            out = enc(self._tokens(tok, texts), output_hidden_states=True)
            pooled = out[0]  # the last encoder's projected pooled output
            embeds.append(out.hidden_states[-2])  # SDXL conditions on the penultimate layer
        return torch.cat(embeds, dim=-1).to(self.dtype), pooled.to(self.dtype) if pooled is not None else None

    def _tokens(self, tokenizer: Any, texts: list[str]) -> torch.Tensor:
        ids = tokenizer(
            texts,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return ids.to(self.device)

    def condition(
        self, prompt: str, negative_prompt: str, guidance: float, batch: int, size: tuple[int, int]
    ) -> Conditioning:
        """Embeddings for a batch of `batch` samples, with the unconditional half when guidance applies."""
        if not self.takes_text:
            if prompt or negative_prompt:
                raise BadInput("this model takes no text; leave prompt and negative prompt empty")
            return Conditioning()
        self.check_words(prompt)
        self.check_words(negative_prompt, "negative prompt")
        # With nothing to steer towards or away from, both halves are the same: skip the doubled batch.
        cfg = guidance > 1.0 and bool(prompt or negative_prompt)
        texts = [negative_prompt, prompt] if cfg else [prompt]
        embeds, pooled = self.encode_text(texts)
        if self.is_sdxl and not negative_prompt and cfg and self._zeros_for_empty():
            embeds[0].zero_()
            assert pooled is not None
            pooled[0].zero_()
        embeds = embeds.repeat_interleave(batch, dim=0)
        added = None
        if self.is_sdxl:
            assert pooled is not None
            added = {
                "text_embeds": pooled.repeat_interleave(batch, dim=0),
                "time_ids": self._time_ids(size).repeat(embeds.shape[0], 1),
            }
        rescale = float(self.settings.get("guidance_rescale", 0.0))
        return Conditioning(
            embeds=embeds,
            added=added,
            guidance=guidance,
            cfg=cfg,
            rescale=rescale,
            interval=self.guidance_interval,
        )

    @property
    def guidance_interval(self) -> tuple[float, float] | None:
        """`guidance_interval` [lo, hi] of noisebrush.json, fractions of the training timesteps, in timesteps."""
        fractions = self.settings.get("guidance_interval")
        if fractions is None:
            return None
        lo, hi = (float(f) for f in fractions)
        if not 0.0 <= lo < hi <= 1.0:
            raise BadInput(
                f"{self.path}: guidance_interval must be [lo, hi] with 0 <= lo < hi <= 1, got {fractions}"
            )
        steps = float(self.scheduler_config.get("num_train_timesteps", 1000))
        return (lo * steps, hi * steps)

    def _zeros_for_empty(self) -> bool:
        return bool(self.settings.get("force_zeros_for_empty_prompt", True))

    def _time_ids(self, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        ids: list[float] = [h, w, 0, 0, h, w]
        expected = self.unet.add_embedding.linear_1.in_features
        per_id = self.unet.config.addition_time_embed_dim
        pooled_dim = self.text_encoder_2.config.projection_dim
        if expected == per_id * 5 + pooled_dim:  # refiner: aesthetic score instead of target size
            ids = [h, w, 0, 0, 6.0]
        return torch.tensor([ids], device=self.device, dtype=self.dtype)

    # -- the denoiser ------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, t: torch.Tensor | float, cond: Conditioning) -> torch.Tensor:
        """The model output (noise, v or score, per the scheduler), with classifier-free guidance."""
        if not self.takes_text:
            return self._unet(x, t)
        if cond.cfg and not cond.guides_at(t):  # the prompt's half of the batch alone
            assert cond.embeds is not None
            added = None if cond.added is None else {k: v.chunk(2)[1] for k, v in cond.added.items()}
            return self._unet(x, t, encoder_hidden_states=cond.embeds.chunk(2)[1], added_cond_kwargs=added)
        xin = torch.cat([x, x]) if cond.cfg else x
        out = self._unet(xin, t, encoder_hidden_states=cond.embeds, added_cond_kwargs=cond.added)
        if not cond.cfg:
            return out
        uncond, text = out.chunk(2)
        return rescale_guidance(uncond + cond.guidance * (text - uncond), text, cond.rescale)

    def _unet(self, x: torch.Tensor, t: torch.Tensor | float, **kwargs: Any) -> torch.Tensor:
        """One UNet call, under autocast where the precision asks for it; the output in the prior's dtype, so
        guidance and the sampler's arithmetic stay in it."""
        if self.autocast is None:
            return self.unet(x, t, return_dict=False, **kwargs)[0]
        with torch.autocast(self.device.type, dtype=self.autocast):
            out = self.unet(x, t, return_dict=False, **kwargs)[0]
        return out.to(self.dtype)

    def set_low_memory(self, on: bool) -> None:
        """Sliced attention and a tiled VAE (diffusers' enable_* switches): lower peak memory, somewhat slower.

        Tiling only changes images larger than the VAE's tile (its sample_size); smaller ones decode as before.
        """
        if on == self.low_memory:
            return
        if hasattr(self.unet, "set_attention_slice"):
            if on:
                self._processors = dict(self.unet.attn_processors)
                self.unet.set_attention_slice("auto")
            elif self._processors is not None:
                self.unet.set_attn_processor(self._processors)
                self._processors = None
        if self.vae is not None:
            if on:
                self.vae.enable_tiling()
            else:
                self.vae.disable_tiling()
        self.low_memory = on

    # -- stopping inside a model call ----------------------------------------------------------
    def blocks(self) -> list[torch.nn.Module]:
        """Every layer of the denoiser and of the VAE's encoder and decoder: the points where a run can stop.

        Steps are far too coarse (one step of the bundled pixel UNet at 1024 px took 46 s on a 2-core CPU),
        and so are blocks: one full-resolution resnet took 14 s there. A convolution or a norm is the
        smallest unit torch runs, and a hook on each costs microseconds per call."""
        nets = [self.unet]
        if self.vae is not None:
            nets += [self.vae.encoder, self.vae.decoder]
        return [m for net in nets for m in net.modules()]

    @contextmanager
    def stop_hooks(self, check: Callable[[], None] | None) -> Iterator[None]:
        """While the block runs, `check()` (which raises Cancelled) is called before every block; the hooks
        are removed whatever happens, so a later run is unaffected."""
        if check is None:
            yield
            return
        handles = [b.register_forward_pre_hook(lambda *_: check()) for b in self.blocks()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    # -- pixels <-> the space the model works in ----------------------------------------------
    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Pixels (1, 3, H, W) in [-1, 1] to the model's space, one row per generator.

        A latent is a sample of the VAE posterior drawn with that row's generator, as diffusers' img2img
        draws it, so a run with the same seed reproduces that pipeline's random numbers in order.
        """
        if self.vae is None:
            return pixels.to(self.dtype).repeat(len(generators), 1, 1, 1)
        dist = self.vae.encode(pixels.to(self._vae_dtype())).latent_dist
        shape = (len(generators), *dist.mean.shape[1:])
        eps = randn_tensor(shape, generator=generators, device=dist.mean.device, dtype=dist.mean.dtype)
        return self.latent(dist.mean + dist.std * eps)

    def latent(self, z: torch.Tensor) -> torch.Tensor:
        """A VAE posterior value in the UNet's space: shifted and scaled as the model was trained on it."""
        assert self.vae is not None
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return ((z - shift) * self.vae.config.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The model's space back to pixels in [-1, 1]."""
        if self.vae is None:
            return z
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        z = z / self.vae.config.scaling_factor + shift
        return self.vae.decode(z.to(self._vae_dtype()), return_dict=False)[0]

    def _vae_dtype(self) -> torch.dtype:
        # SDXL's VAE overflows in half precision; its config asks for float32.
        return torch.float32 if getattr(self.vae.config, "force_upcast", False) else self.dtype

    def preview_rgb(self, x0: torch.Tensor) -> torch.Tensor:
        """A cheap RGB look at an x0 prediction in [-1, 1]: identity for pixels, TAESD or a linear map for latents."""
        if self.vae is None:
            return x0[:, :3]
        if self.preview_decoder is not None:
            return self.preview_decoder(x0, self.vae_factor)
        x0 = x0.float()
        if x0.shape[1] == 4:
            factors = torch.tensor(_SDXL_RGB if self.is_sdxl else _SD1_RGB, device=x0.device)
            rgb = torch.einsum("bchw,cr->brhw", x0, factors)
            if self.is_sdxl:
                rgb = rgb + torch.tensor(_SDXL_BIAS, device=x0.device)[None, :, None, None]
        else:
            rgb = x0[:, :3] / 2.0
        return rgb.repeat_interleave(self.vae_factor, 2).repeat_interleave(self.vae_factor, 3)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] to (B, H, W, 3) uint8, rounding as diffusers' image processor does."""
    x = (x.float() / 2 + 0.5).clamp(0, 1)
    return (x.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
