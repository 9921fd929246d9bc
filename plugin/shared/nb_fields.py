"""The server's job fields for the plugins: default, bounds, choices and help of each.

Generated from the engine's request dataclasses by `python -m noisebrush.core.server.plugin_fields`;
do not edit by hand (tests/test_fields.py fails when this file and the requests differ).
"""

FIELDS = {
    'sdedit': {
        'model': {'default': 'default', 'low': None, 'high': None, 'choices': None, 'label': 'model', 'help': "'default' (bundled prior), a folder, a checkpoint file or a cached hub id"},
        'strength': {'default': 0.5, 'low': 0.0, 'high': 1.0, 'choices': None, 'label': 'strength', 'help': 't0 of SDEdit; low is faithful to the guide, high is realistic'},
        'steps': {'default': None, 'low': 1, 'high': 10000, 'choices': None, 'label': 'steps', 'help': "steps of the whole schedule (default: the model's)"},
        'repeats': {'default': 1, 'low': 1, 'high': 100, 'choices': None, 'label': 'repeats', 'help': 'K: noise to t0 and denoise again, K times (paper Algorithm 2)'},
        'seed': {'default': 0, 'low': 0, 'high': 9223372036854775807, 'choices': None, 'label': 'seed', 'help': 'seed of the noise; the same seed and settings give the same image'},
        'variations': {'default': 1, 'low': 1, 'high': 64, 'choices': None, 'label': 'variations', 'help': 'results per guide, with seeds seed, seed+1, ...'},
        'prompt': {'default': '', 'low': None, 'high': None, 'choices': None, 'label': 'prompt', 'help': 'text for models that take it'},
        'negative_prompt': {'default': '', 'low': None, 'high': None, 'choices': None, 'label': 'negative prompt', 'help': 'what the result should not show (models that take text)'},
        'guidance': {'default': None, 'low': 0.0, 'high': 100.0, 'choices': None, 'label': 'guidance', 'help': "classifier-free guidance scale (default: the model's, 7.5 for Stable Diffusion)"},
        'device': {'default': 'auto', 'low': None, 'high': None, 'choices': None, 'label': 'device', 'help': 'one of auto, cpu, cuda (or cuda:N)'},
        'feather': {'default': 8, 'low': 0, 'high': 256, 'choices': None, 'label': 'feather', 'help': "pixels of seam blending inside the selection's border"},
        'context': {'default': 64, 'low': 0, 'high': 4096, 'choices': None, 'label': 'context', 'help': "pixels of context around the selection's box that the prior sees"},
        'low_memory': {'default': False, 'low': None, 'high': None, 'choices': None, 'label': 'low memory', 'help': 'sliced attention and tiled VAE: slower, for 4-8 GB cards and big crops'},
        'work_size': {'default': None, 'low': None, 'high': None, 'choices': None, 'label': 'work size', 'help': "longest side the composition runs at; a region over 1.5x larger is refined at full size (default: the model's native size; 0: one stage at full size)"},
        'refine_strength': {'default': None, 'low': 0.0, 'high': 1.0, 'choices': None, 'label': 'refine strength', 'help': "t0 of the full-size refine stage after a composition at the work size (default: the model's, 0.3 unless its noisebrush.json says; 0: none)"},
        'live': {'default': False, 'low': None, 'high': None, 'choices': None, 'label': 'live', 'help': "a quick draft, as Live paints: composed at the model's own scale on its live schedule (live_steps unless steps is set), upscaled, never refined at full size"},
        'loras': {'default': (), 'low': None, 'high': None, 'choices': None, 'label': 'loras', 'help': 'a LoRA .safetensors applied with a weight (default 1; 0: not at all); repeat for several'},
        'sampler': {'default': 'default', 'low': None, 'high': None, 'choices': ['default', 'lcm', 'euler-trailing'], 'label': 'sampler', 'help': "'default' (the model's scheduler), 'lcm' (LCM and LCM-LoRA) or 'euler-trailing' (Hyper-SD and Lightning LoRAs); few-step samplers need strength x steps >= 1"},
        'controlnet': {'default': '', 'low': None, 'high': None, 'choices': None, 'label': 'controlnet', 'help': 'ControlNet weights (a diffusers folder or a .safetensors file) that steer the edit'},
        'control_map': {'default': 'edges', 'low': None, 'high': None, 'choices': ['edges', 'scribble'], 'label': 'control map', 'help': "the control image made from the guide when none is given: 'edges' (Canny-like, thin) or 'scribble' (thick lines)"},
        'control_scale': {'default': 1.0, 'low': 0.0, 'high': 2.0, 'choices': None, 'label': 'control scale', 'help': "how strongly the ControlNet steers (diffusers' conditioning scale)"},
    },
    'ledits': {
        'model': {'default': 'default', 'low': None, 'high': None, 'choices': None, 'label': 'model', 'help': "'default' (bundled prior), a folder, a checkpoint file or a cached hub id"},
        'steps': {'default': None, 'low': 1, 'high': 1000, 'choices': None, 'label': 'steps', 'help': "steps of the whole schedule (default: the model's, at most 100)"},
        'skip': {'default': 0.15, 'low': 0.0, 'high': 0.99, 'choices': None, 'label': 'skip', 'help': 'fraction of the highest timesteps not regenerated (more = closer to the input)'},
        'source_prompt': {'default': '', 'low': None, 'high': None, 'choices': None, 'label': 'source prompt', 'help': 'describes the input; guides the inversion'},
        'target_prompt': {'default': '', 'low': None, 'high': None, 'choices': None, 'label': 'target prompt', 'help': 'describes the result; guides the regeneration'},
        'source_guidance': {'default': 3.5, 'low': 0.0, 'high': 100.0, 'choices': None, 'label': 'source guidance', 'help': 'guidance of the source prompt'},
        'target_guidance': {'default': 7.5, 'low': 0.0, 'high': 100.0, 'choices': None, 'label': 'target guidance', 'help': 'guidance of the target prompt (used only with one)'},
        'momentum': {'default': 0.3, 'low': 0.0, 'high': 10.0, 'choices': None, 'label': 'momentum', 'help': 'SEGA momentum scale (0 = none)'},
        'momentum_beta': {'default': 0.6, 'low': 0.0, 'high': 0.99, 'choices': None, 'label': 'momentum beta', 'help': 'SEGA momentum decay'},
        'threshold_over': {'default': 'channel', 'low': None, 'high': None, 'choices': ['channel', 'pixel'], 'label': 'threshold over', 'help': "where SEGA's quantile is taken: 'channel' (SEGA's own) or 'pixel' (diffusers' LEDITS++)"},
        'seed': {'default': 0, 'low': 0, 'high': 9223372036854775807, 'choices': None, 'label': 'seed', 'help': 'seed of the noise; the same seed and settings give the same image'},
        'device': {'default': 'auto', 'low': None, 'high': None, 'choices': None, 'label': 'device', 'help': 'one of auto, cpu, cuda (or cuda:N)'},
        'feather': {'default': 8, 'low': 0, 'high': 256, 'choices': None, 'label': 'feather', 'help': "pixels of seam blending inside the selection's border"},
        'work_size': {'default': None, 'low': None, 'high': None, 'choices': None, 'label': 'work size', 'help': "edit a larger image at this longest side and carry the change up to full size (default: the model's own, 64 for the bundled prior; 0: always the full size)"},
        'refine_strength': {'default': None, 'low': 0.0, 'high': 1.0, 'choices': None, 'label': 'refine strength', 'help': "t0 of a full-size refine over what an edit at the work size changed (default: the model's, 0.3 unless its noisebrush.json says; 0: none)"},
    },
    'concept': {
        'scale': {'default': None, 'low': 0.0, 'high': 100.0, 'choices': None, 'label': 'scale', 'help': "SEGA's guidance scale of this concept"},
        'threshold': {'default': 0.95, 'low': None, 'high': None, 'choices': None, 'label': 'threshold', 'help': "SEGA's lambda: keep guidance above this quantile (0.9-0.95 typical)"},
        'warmup': {'default': 2, 'low': 0, 'high': 10000, 'choices': None, 'label': 'warmup', 'help': 'steps before the concept applies'},
    },
}
