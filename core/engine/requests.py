"""One typed request per engine operation: the CLI, the GUI, the server and the plugins all build these."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from noisebrush.core.engine.fields import check_fields, option
from noisebrush.core.errors import BadInput

if TYPE_CHECKING:  # numpy loads when a request is checked, not when the CLI builds its parser
    import numpy as np

DEFAULT_STRENGTH = 0.5  # SDEdit's t0; the paper finds 0.3-0.6 works for reasonable guides (REFERENCE 1).
DEVICES = ("auto", "cpu", "cuda")
# SEGA's concept scale when neither the request nor the model sets one: LEDITS++'s default on Stable
# Diffusion. A model whose concepts need more (the bundled prior) says so in noisebrush.json.
CONCEPT_SCALE = 7.0
EXCERPT_CHARS = 80  # the most characters of a caller's input an error message quotes
# Inward feathering costs grow with the radius (core/engine/masks.py); past a few hundred pixels the seam is the
# whole selection anyway, so this bound keeps one job's last stage short without limiting real use.
MAX_FEATHER = 256
MAX_CONTEXT = 4096  # pixels around the mask's box; the crop never leaves the image, so more adds nothing
MAX_STEPS = 10000  # any schedule; at submit the server also holds steps to the model's own schedule
MAX_PROMPT_CHARS = 1000  # CLIP reads 77 tokens (a few hundred characters); the rest would be cut silently
MAX_MODEL_CHARS = 1000
MAX_CONCEPTS = 16
MAX_SCALE = 100.0  # guidance and concept scales
MAX_SEED = 2**63  # seeds are drawn by torch.Generator.manual_seed, which takes any signed 64-bit value

MODEL_HELP = "'default' (bundled prior), a folder, a checkpoint file or a cached hub id"
SEED_HELP = "seed of the noise; the same seed and settings give the same image"
DEVICE_HELP = f"one of {', '.join(DEVICES)} (or cuda:N)"
FEATHER_HELP = "pixels of seam blending inside the selection's border"
# Few-step samplers by name (core/engine/schedulers.py): "default" is the model's own scheduler.
SAMPLERS = ("default", "lcm", "euler-trailing")
CONTROL_MAPS = (
    "edges",
    "scribble",
)  # control images the engine makes from the guide (core/engine/control.py)
MAX_LORAS = 8
MAX_LORA_WEIGHT = (
    10.0  # A1111 and ComfyUI allow any weight; past a few the change is noise, so this bound is loose
)


class Lora(NamedTuple):
    """One LoRA file and the weight its change is applied with (1: as trained, 0: not at all, < 0: inverted)."""

    path: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Lora:
        """`FILE[:WEIGHT]`; the weight is split off the last colon only when it reads as a number, so a
        Windows drive letter or a colon in a file name stays part of the path."""
        path, sep, weight = text.rpartition(":")
        if sep and path:
            try:
                return cls(path, float(weight))
            except ValueError:
                pass
        return cls(text)


def refine_option(what: str) -> Any:
    """The `refine_strength` field of a request whose work at a smaller size is refined at full size."""
    return option(
        None,
        low=0.0,
        high=1.0,
        metavar="T0",
        why="t0 of the full-size stage; 0: none",
        help=f"{what} (default: the model's, 0.3 unless its noisebrush.json says; 0: none)",
    )


@dataclass
class SDEditRequest:
    """Everything one SDEdit run needs (Meng et al. 2022, Algorithms 1-4).

    `guide` is an RGB or RGBA uint8 array (H, W, 3|4). `mask` is an (H, W) float array in [0, 1]
    where 1 = may change and 0 = kept bit-identical; soft values blend. `steps` counts the steps of the
    whole schedule (t0 = 1); a run makes about `strength * steps` model calls per repeat.
    """

    guide: np.ndarray
    mask: np.ndarray | None = None
    model: str = option("default", metavar="NAME|PATH", help=MODEL_HELP)
    strength: float = option(
        DEFAULT_STRENGTH,
        low=0.0,
        high=1.0,
        metavar="T0",
        why="t0 of SDEdit",
        help="t0 of SDEdit; low is faithful to the guide, high is realistic",
    )
    steps: int | None = option(
        None, low=1, high=MAX_STEPS, help="steps of the whole schedule (default: the model's)"
    )
    repeats: int = option(
        1, low=1, high=100, help="K: noise to t0 and denoise again, K times (paper Algorithm 2)"
    )
    seed: int = option(0, low=0, high=MAX_SEED, high_open=True, help=SEED_HELP)
    variations: int = option(1, low=1, high=64, help="results per guide, with seeds seed, seed+1, ...")
    prompt: str = option("", help="text for models that take it")
    negative_prompt: str = option("", help="what the result should not show (models that take text)")
    guidance: float | None = option(
        None,
        low=0.0,
        high=MAX_SCALE,
        help="classifier-free guidance scale (default: the model's, 7.5 for Stable Diffusion)",
    )
    device: str = option("auto", metavar="DEVICE", help=DEVICE_HELP)
    feather: int = option(8, low=0, high=MAX_FEATHER, metavar="PX", unit="pixels", help=FEATHER_HELP)
    context: int = option(
        64,
        low=0,
        high=MAX_CONTEXT,
        metavar="PX",
        unit="pixels",
        help="pixels of context around the selection's box that the prior sees",
    )
    low_memory: bool = option(
        False, help="sliced attention and tiled VAE: slower, for 4-8 GB cards and big crops"
    )
    # A region more than 1.5x larger is composed at this size, then refined at full size (core/engine/plan.py).
    work_size: int | None = option(
        None,
        metavar="PX",
        help="longest side the composition runs at; a region over 1.5x larger is refined at full size "
        "(default: the model's native size; 0: one stage at full size)",
    )
    refine_strength: float | None = refine_option(
        "t0 of the full-size refine stage after a composition at the work size"
    )
    # Live painting in the Studio and in Krita sends this; the engine turns it into a plan (plan.live_run).
    live: bool = option(
        False,
        help="a quick draft, as Live paints: composed at the model's own scale on its live schedule "
        "(live_steps unless steps is set), upscaled, never refined at full size",
    )
    loras: tuple[Lora, ...] = option(
        (),
        metavar="FILE[:WEIGHT]",
        help="a LoRA .safetensors applied with a weight (default 1; 0: not at all); repeat for several",
    )
    sampler: str = option(
        "default",
        choices=SAMPLERS,
        help="'default' (the model's scheduler), 'lcm' (LCM and LCM-LoRA) or 'euler-trailing' "
        "(Hyper-SD and Lightning LoRAs); few-step samplers need strength x steps >= 1",
    )
    controlnet: str = option(
        "",
        metavar="PATH",
        help="ControlNet weights (a diffusers folder or a .safetensors file) that steer the edit",
    )
    # The control image (H, W, 3) uint8, the guide's size; None: made from the guide by `control_map`.
    control: np.ndarray | None = None
    control_map: str = option(
        "edges",
        choices=CONTROL_MAPS,
        help="the control image made from the guide when none is given: 'edges' (Canny-like, thin) or "
        "'scribble' (thick lines)",
    )
    control_scale: float = option(
        1.0, low=0.0, high=2.0, help="how strongly the ControlNet steers (diffusers' conditioning scale)"
    )

    def validate(self) -> None:
        """Fail at the edge with a message that says what is wrong and what is allowed."""
        _check_image(self.guide, "guide")
        if self.mask is not None:
            m = self.mask
            if m.ndim != 2:
                raise BadInput(f"mask must be a single-channel (H, W) array, got shape {m.shape}")
            if m.shape != self.guide.shape[:2]:
                raise BadInput(
                    f"mask is {m.shape[1]}x{m.shape[0]} but the guide is "
                    f"{self.guide.shape[1]}x{self.guide.shape[0]}; they must be the same size"
                )
        check_fields(self)
        _check_common(self.model, self.device)
        check_work_size(self.work_size)
        check_loras(self.loras)
        if self.control is not None:
            _check_image(self.control, "control image")
            if self.control.shape[:2] != self.guide.shape[:2]:
                raise BadInput(
                    f"control image is {self.control.shape[1]}x{self.control.shape[0]} but the guide is "
                    f"{self.guide.shape[1]}x{self.guide.shape[0]}; they must be the same size"
                )
            if not self.controlnet:
                raise BadInput("a control image needs ControlNet weights: give controlnet too")
        if len(self.controlnet) > MAX_MODEL_CHARS:
            raise BadInput(f"controlnet must be a path of at most {MAX_MODEL_CHARS} characters")
        _check_text(self.prompt, "prompt")
        _check_text(self.negative_prompt, "negative prompt")


@dataclass
class Concept:
    """One SEGA concept (Brack et al. 2023): a word or phrase to add or remove, with its guidance."""

    text: str
    remove: bool = False
    # None: the model's default_concept_scale (CONCEPT_SCALE unless it sets one)
    scale: float | None = option(
        None, low=0.0, high=MAX_SCALE, cli=False, help="SEGA's guidance scale of this concept"
    )
    threshold: float = option(
        0.95, help="SEGA's lambda: keep guidance above this quantile (0.9-0.95 typical)"
    )
    warmup: int = option(2, low=0, high=MAX_STEPS, help="steps before the concept applies")

    @property
    def signed_scale(self) -> float:
        """What SEGA multiplies this concept's direction by: negative to remove it."""
        if self.scale is None:
            raise ValueError(f"concept {self.text!r} has no scale; give it the model's default first")
        return -self.scale if self.remove else self.scale


@dataclass
class LeditsRequest:
    """Everything one LEDITS run needs: edit-friendly DDPM inversion then SEGA regeneration.

    `steps` counts the whole schedule; the highest round(steps * skip) timesteps are neither inverted nor
    regenerated, so a run makes steps - round(steps * skip) model calls to invert (none when the inversion is
    cached) and as many batched calls to edit. `mask` (H, W) in [0, 1]: 1 = may change, 0 = kept bit-identical.
    """

    image: np.ndarray
    concepts: list[Concept] = field(default_factory=list)
    mask: np.ndarray | None = None
    model: str = option("default", metavar="NAME|PATH", help=MODEL_HELP)
    steps: int | None = option(
        None, low=1, high=1000, help="steps of the whole schedule (default: the model's, at most 100)"
    )
    skip: float = option(
        0.15,
        low=0.0,
        high=1.0,
        high_open=True,
        help="fraction of the highest timesteps not regenerated (more = closer to the input)",
    )
    source_prompt: str = option("", help="describes the input; guides the inversion")
    target_prompt: str = option("", help="describes the result; guides the regeneration")
    source_guidance: float = option(3.5, low=0.0, high=MAX_SCALE, help="guidance of the source prompt")
    target_guidance: float = option(
        7.5, low=0.0, high=MAX_SCALE, help="guidance of the target prompt (used only with one)"
    )
    momentum: float = option(0.3, low=0.0, high=10.0, help="SEGA momentum scale (0 = none)")
    momentum_beta: float = option(0.6, low=0.0, high=1.0, high_open=True, help="SEGA momentum decay")
    threshold_over: str = option(
        "channel",
        choices=("channel", "pixel"),
        help="where SEGA's quantile is taken: 'channel' (SEGA's own) or 'pixel' (diffusers' LEDITS++)",
    )
    seed: int = option(0, low=0, high=MAX_SEED, high_open=True, help=SEED_HELP)
    device: str = option("auto", metavar="DEVICE", help=DEVICE_HELP)
    feather: int = option(8, low=0, high=MAX_FEATHER, metavar="PX", unit="pixels", help=FEATHER_HELP)
    # A larger image is edited at this size and the change carried up to its full size (core/engine/ledits.py).
    work_size: int | None = option(
        None,
        metavar="PX",
        help="edit a larger image at this longest side and carry the change up to full size "
        "(default: the model's own, 64 for the bundled prior; 0: always the full size)",
    )
    # An edit made at the work size is blurred and ghosts old edges where it moved them: a low-t0 SDEdit at full
    # size over the changed pixels alone (a soft mask, so nothing else moves) gives it full-size detail.
    refine_strength: float | None = refine_option(
        "t0 of a full-size refine over what an edit at the work size changed"
    )

    def validate(self) -> None:
        """Fail at the edge with a message that says what is wrong and what is allowed."""
        _check_image(self.image, "image")
        if self.mask is not None:
            import numpy as np

            if not isinstance(self.mask, np.ndarray) or self.mask.ndim != 2:
                raise BadInput(f"mask must be a single-channel (H, W) array, got shape {np.shape(self.mask)}")
            if self.mask.shape != self.image.shape[:2]:
                raise BadInput(
                    f"mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the image is "
                    f"{self.image.shape[1]}x{self.image.shape[0]}; they must be the same size"
                )
        check_fields(self)
        if len(self.concepts) > MAX_CONCEPTS:
            raise BadInput(f"at most {MAX_CONCEPTS} concepts per edit, got {len(self.concepts)}")
        for c in self.concepts:
            if not c.text.strip():
                raise BadInput("a concept needs a word or phrase")
            _check_text(c.text, "concept")
            if not 0.0 < c.threshold < 1.0:
                raise BadInput(f"concept threshold must be in (0, 1), got {c.threshold}")
            if c.scale is not None and not 0.0 <= c.scale <= MAX_SCALE:
                raise BadInput(
                    f"concept scale must be in [0, {MAX_SCALE:g}], got {c.scale}; remove negates it"
                )
            if not 0 <= c.warmup <= MAX_STEPS:
                raise BadInput(f"concept warm-up must be between 0 and {MAX_STEPS} steps, got {c.warmup}")
        _check_text(self.source_prompt, "source prompt")
        _check_text(self.target_prompt, "target prompt")
        _check_common(self.model, self.device)
        check_work_size(self.work_size)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to `limit` characters with a note of how much was left out: errors quote input, and a
    megabyte prompt echoed whole would come back on every status poll."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def check_work_size(work_size: int | None) -> None:
    if work_size is not None and work_size != 0 and not 8 <= work_size <= 16384:
        raise BadInput(f"work size must be 0 (the full size) or 8 to 16384 pixels, got {work_size}")


def check_loras(loras: tuple[Lora, ...] | list[Lora]) -> None:
    """At most MAX_LORAS files, each a path with a finite weight of at most MAX_LORA_WEIGHT either way."""
    if not isinstance(loras, (tuple, list)) or len(loras) > MAX_LORAS:
        raise BadInput(f"at most {MAX_LORAS} LoRA files per edit, got {len(loras)}")
    for item in loras:
        if not isinstance(item, tuple) or len(item) != 2:
            raise BadInput(f"a LoRA is a (path, weight) pair, got {excerpt(repr(item))}")
        path, weight = item
        if not isinstance(path, str) or not path or len(path) > MAX_MODEL_CHARS:
            raise BadInput(
                f"a LoRA needs a file path of 1 to {MAX_MODEL_CHARS} characters, got {excerpt(repr(path))}"
            )
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or abs(weight) > MAX_LORA_WEIGHT:
            raise BadInput(
                f"LoRA weight must be in [-{MAX_LORA_WEIGHT:g}, {MAX_LORA_WEIGHT:g}], got {weight} for {excerpt(path)}"
            )


def check_repeats(repeats: int) -> None:
    """K of SDEdit (noise to t0 and denoise again, K times): one rule for requests and the evaluation."""
    if not 1 <= repeats <= 100:
        raise BadInput(f"repeats must be between 1 and 100, got {repeats}")


def _check_steps(steps: int | None, most: int) -> None:
    if steps is not None and not 1 <= steps <= most:
        raise BadInput(f"steps must be between 1 and {most}, got {steps}")


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise BadInput(
            f"{what} is {len(text)} characters long; at most {MAX_PROMPT_CHARS} are allowed: {excerpt(text)!r}"
        )


def _check_common(model: str, device: str) -> None:
    """The fields SDEdit and LEDITS share whose rule is more than a range."""
    if not model or len(model) > MAX_MODEL_CHARS:
        raise BadInput(
            f"model must be a name from `noisebrush models` or a path of 1 to {MAX_MODEL_CHARS} characters, "
            f"got {excerpt(model)!r}"
        )
    index = device.removeprefix("cuda:")
    if device not in DEVICES and not (device.startswith("cuda:") and index.isascii() and index.isdigit()):
        raise BadInput(f"unknown device {excerpt(device)!r}; allowed: auto, cpu, cuda, cuda:N")


def _check_image(img: np.ndarray, name: str) -> None:
    import numpy as np

    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise BadInput(f"{name} must be a uint8 array")
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise BadInput(f"{name} must be RGB or RGBA (H, W, 3|4), got shape {img.shape}")
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise BadInput(f"{name} is {img.shape[1]}x{img.shape[0]}; at least 8x8 pixels are needed")
