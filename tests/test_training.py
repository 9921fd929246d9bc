"""Training of the bundled prior's kind of model, on tiny configs: checkpoints load, resuming is exact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from noisebrush.core.lab import network as prior_model
from noisebrush.core.lab import network_config as prior_config
from noisebrush.core.lab import train_config, training, training_data
from noisebrush.core.lab.scenes import VOCABULARY


def tiny(out: Path, steps: int, **overrides: object) -> train_config.TrainConfig:
    prior = prior_config.PriorConfig(
        channels=(8, 16), norm_groups=4, text_width=16, text_layers=1, max_words=8
    )
    config = train_config.TrainConfig(
        out=str(out),
        size=16,
        batch=2,
        steps=steps,
        checkpoint_every=2,
        sample_steps=2,
        threads=1,
        device="cpu",
        prior=prior,
        warmup=1,
    )
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return prior_model.load_prior(folder).unet.state_dict()


def test_every_vocabulary_word_is_one_token(tmp_path: Path) -> None:
    tok = prior_model.write_tokenizer(list(VOCABULARY), tmp_path / "tok")
    for word in VOCABULARY:
        assert len(tok(word, add_special_tokens=False).input_ids) == 1
    ids = tok("sunset lake", padding="max_length", max_length=tok.model_max_length).input_ids
    assert len(ids) == tok.model_max_length == 16


def test_checkpoint_is_a_loadable_model_folder(tmp_path: Path) -> None:
    result = training.train(tiny(tmp_path, 2), progress=False)
    folder = result.last_checkpoint / "prior"
    for part in (
        "model_index.json",
        "noisebrush.json",
        "unet/config.json",
        "text_encoder/config.json",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "scheduler/scheduler_config.json",
    ):
        assert (folder / part).exists(), part
    assert list((folder / "unet").glob("*.safetensors")) and (result.last_checkpoint / "samples.png").exists()
    prior = prior_model.load_prior(folder)
    assert prior.meta["vocabulary"] == list(VOCABULARY) and prior.meta["step"] == 2
    images = prior_model.sample(
        prior, ["", "lake"], 16, 16, steps=2, generator=torch.Generator().manual_seed(0)
    )
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1


def test_checkpoint_runs_through_the_engine(tmp_path: Path) -> None:
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.requests import SDEditRequest

    result = training.train(tiny(tmp_path, 2), progress=False)
    guide = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    engine = Engine()
    req = SDEditRequest(
        guide=guide, model=str(result.last_checkpoint / "prior"), strength=0.5, steps=4, prompt="lake"
    )
    (out,) = engine.sdedit(req)
    assert out.shape == guide.shape and out.dtype == np.uint8
    assert engine.vocabulary(str(result.last_checkpoint / "prior")) == list(VOCABULARY)


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    straight = training.train(tiny(tmp_path / "a", 4), progress=False)
    training.train(tiny(tmp_path / "b", 2), progress=False)
    resumed = training.train(tiny(tmp_path / "b", 4), progress=False)
    assert resumed.step == 4
    a, b = weights(straight.last_checkpoint / "prior"), weights(resumed.last_checkpoint / "prior")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_old_optimiser_states_are_pruned(tmp_path: Path) -> None:
    training.train(tiny(tmp_path, 6, keep_states=1), progress=False)
    states = sorted(tmp_path.glob("checkpoints/step-*/state.pt"))
    assert [p.parent.name for p in states] == ["step-0000006"]
    assert len(list(tmp_path.glob("checkpoints/step-*/prior"))) == 3


def test_captions_drop_to_empty_and_use_only_true_words() -> None:
    rng = np.random.default_rng(0)
    words = [["day", "lake", "forest"]] * 2000
    caps = training_data.captions(words, rng, keep=0.6, dropout=0.15)
    assert 0.12 < np.mean([c == "" for c in caps]) < 0.18
    assert all(set(c.split()) <= {"day", "lake", "forest"} for c in caps)
    assert {"day", "lake forest", "forest day lake"} & set(caps)


def test_min_snr_weights_only_the_nearly_clean_timesteps(tmp_path: Path) -> None:
    prior = prior_model.build_prior(tiny(tmp_path, 1).prior, tmp_path / "build")
    t = torch.arange(0, 1000, 37)
    assert torch.equal(training.snr_weights(prior, t, 0.0), torch.ones(len(t)))
    w = training.snr_weights(prior, t, 5.0)
    abar = prior.scheduler.alphas_cumprod[t]
    snr = abar / (1 - abar)
    assert torch.allclose(w[snr <= 5], torch.ones(int((snr <= 5).sum())))
    assert (w[snr > 5] < 1).all() and (w[snr > 5] > 0).all()
    assert torch.allclose(w * snr, torch.clamp(snr, max=5.0))


def test_min_snr_run_trains_and_resumes_with_it(tmp_path: Path) -> None:
    result = training.train(tiny(tmp_path, 2, min_snr=5.0), progress=False)
    assert result.step == 2 and np.isfinite(result.loss)
    saved = train_config.config_from_json(json.loads((tmp_path / "config.json").read_text()))
    assert saved.min_snr == 5.0


def test_trains_on_a_folder_of_images_with_captions(tmp_path: Path) -> None:
    data = tmp_path / "images"
    data.mkdir()
    for i, colour in enumerate([(200, 40, 40), (40, 40, 200)]):
        Image.fromarray(np.full((40, 30, 3), colour, np.uint8)).save(data / f"im{i}.png")
    (data / "im0.txt").write_text("red barn")
    config = tiny(tmp_path / "run", 2, data=str(data))
    result = training.train(config, progress=False)
    assert prior_model.load_prior(result.last_checkpoint / "prior").meta["vocabulary"] == ["barn", "red"]


def test_cli_registers_train_and_resumes_from_the_saved_config(tmp_path: Path) -> None:
    from noisebrush.core.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    training.train(tiny(out, 2), progress=False)
    args = parser.parse_args(["train", "--out", str(out), "--steps", "3", "--no-progress", "--threads", "1"])
    config = cli_train.config_from_args(args)
    assert config.size == 16 and config.steps == 3  # the run's own settings, new length
    assert args.func(args) == 0
    assert (out / "checkpoints" / "step-0000003" / "prior").exists()


@pytest.mark.parametrize("flag", ["--size", "--batch"])
def test_cli_flags_parse(flag: str) -> None:
    from noisebrush.core.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["train", flag, "32"]).func is cli_train.run


def test_export_sets_the_engine_defaults(tmp_path: Path) -> None:
    import json

    result = training.train(tiny(tmp_path / "run", 2), progress=False)
    target = tmp_path / "models" / "mine"
    prior_model.export_prior(result.last_checkpoint / "prior", target, default_steps=7, default_guidance=2.5)
    meta = json.loads((target / "noisebrush.json").read_text())
    assert (
        meta["default_steps"] == 7
        and meta["default_guidance"] == 2.5
        and meta["vocabulary"] == list(VOCABULARY)
    )
    assert weights(target).keys() == weights(result.last_checkpoint / "prior").keys()


def test_grafting_the_pooled_prompt_embedding_leaves_the_model_unchanged(tmp_path: Path) -> None:
    config = tiny(tmp_path / "old", 1)
    config.prior.global_text = False
    old = training.train(config, progress=False).last_checkpoint / "prior"
    source = prior_model.load_prior(old)
    fresh = tiny(tmp_path / "new", 1).prior
    fresh.vocabulary = list(VOCABULARY)
    grafted = prior_model.build_prior(fresh, tmp_path / "build")
    training._init_from(grafted, old)
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor(500)
    context = prior_model.encode_prompts(source, ["lake", ""])
    with torch.no_grad():
        want = source.unet(x, t, context).sample
        got = grafted.unet.eval()(x, t, context).sample
    assert torch.allclose(want, got, atol=1e-5)


def test_v_prediction_loss_targets_the_velocity(tmp_path: Path) -> None:
    """A UNet that outputs exactly v = sqrt(abar) eps - sqrt(1 - abar) x0 has zero loss."""
    config = tiny(tmp_path, 1)
    config.prior.prediction = "v_prediction"
    prior = prior_model.build_prior(config.prior, tmp_path / "build")
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1

    class Oracle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # so the prior has a device

        def forward(self, xt: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> object:
            abar = prior.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
            eps = (xt - abar.sqrt() * x0) / (1 - abar).sqrt()
            return argparse.Namespace(sample=abar.sqrt() * eps - (1 - abar).sqrt() * x0)

    prior.unet = Oracle()  # type: ignore[assignment]
    loss = training.diffusion_loss(prior, x0, ["", ""], torch.Generator().manual_seed(0))
    assert loss.item() < 1e-8


def test_v_prediction_min_snr_weights_the_x0_error_as_epsilon_does(tmp_path: Path) -> None:
    eps_prior = prior_model.build_prior(tiny(tmp_path, 1).prior, tmp_path / "a")
    config = tiny(tmp_path, 1)
    config.prior.prediction = "v_prediction"
    v_prior = prior_model.build_prior(config.prior, tmp_path / "b")
    t = torch.arange(0, 1000, 37)
    abar = eps_prior.scheduler.alphas_cumprod[t]
    snr = abar / (1 - abar)
    # ||eps error||^2 = SNR ||x0 error||^2 and ||v error||^2 = (SNR + 1) ||x0 error||^2 (Hang et al. 2023)
    assert torch.allclose(training.snr_weights(eps_prior, t, 5.0) * snr, torch.clamp(snr, max=5.0))
    assert torch.allclose(training.snr_weights(v_prior, t, 5.0) * (snr + 1), torch.clamp(snr, max=5.0))


def test_zero_terminal_snr_min_snr_still_teaches_the_step_at_t(tmp_path: Path) -> None:
    config = tiny(tmp_path, 1)
    config.prior.prediction, config.prior.zero_terminal_snr = "v_prediction", True
    prior = prior_model.build_prior(config.prior, tmp_path / "build")
    t = torch.arange(0, 1000, 37).tolist() + [999]
    t = torch.tensor(t)
    abar = prior.scheduler.alphas_cumprod[t]
    snr = abar / (1 - abar)
    w = training.snr_weights(prior, t, 5.0)
    assert snr[-1] == 0 and w[-1] == 1  # the paper's min(SNR, gamma) / (SNR + 1) would be 0 here
    assert torch.allclose(w[snr <= 4], torch.ones(int((snr <= 4).sum())))  # plain v loss up to gamma - 1
    assert torch.allclose(w * (snr + 1), torch.clamp(snr + 1, max=5.0))


def test_v_prediction_fine_tune_of_an_epsilon_run_loads_and_runs(tmp_path: Path) -> None:
    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.requests import SDEditRequest

    eps_run = training.train(tiny(tmp_path / "eps", 1), progress=False).last_checkpoint / "prior"
    config = tiny(tmp_path / "v", 2, init_from=str(eps_run))
    config.prior.prediction = "v_prediction"
    result = training.train(config, progress=False)
    folder = result.last_checkpoint / "prior"
    assert prior_model.load_prior(folder).scheduler.config.prediction_type == "v_prediction"
    saved = train_config.config_from_json(json.loads((tmp_path / "v" / "config.json").read_text()))
    assert saved.prior.prediction == "v_prediction"  # a resume keeps it
    guide = np.full((16, 16, 3), 90, np.uint8)
    (out,) = Engine().sdedit(SDEditRequest(guide=guide, model=str(folder), strength=0.6, steps=4, seed=1))
    assert out.shape == (16, 16, 3)


def test_unknown_prediction_is_refused() -> None:
    with pytest.raises(ValueError, match="epsilon, v_prediction"):
        prior_model.make_scheduler(1000, "sample")


def test_saved_and_exported_priors_sample_with_ddim_on_the_training_schedule(tmp_path: Path) -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    folder = training.train(tiny(tmp_path / "run", 1), progress=False).last_checkpoint / "prior"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]
    ddim = DDIMScheduler.from_pretrained(folder / "scheduler")
    assert torch.equal(ddim.alphas_cumprod, prior_model.make_scheduler().alphas_cumprod)
    # a folder saved before the switch (DDPMScheduler) is converted on export, weights untouched
    (folder / "scheduler" / "scheduler_config.json").unlink()
    prior_model.make_scheduler().save_pretrained(folder / "scheduler")
    index["scheduler"] = ["diffusers", "DDPMScheduler"]
    (folder / "model_index.json").write_text(json.dumps(index))
    prior_model.export_prior(folder, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "model_index.json").read_text())["scheduler"][1] == "DDIMScheduler"
    assert DDIMScheduler.load_config(tmp_path / "out" / "scheduler")["_class_name"] == "DDIMScheduler"
    assert DDPMScheduler.from_pretrained(tmp_path / "out" / "scheduler").config.prediction_type == "epsilon"


def test_zero_terminal_snr_run_samples_from_pure_noise_through_the_engine(tmp_path: Path) -> None:
    from diffusers import DDIMScheduler

    from noisebrush.core.engine.engine import Engine
    from noisebrush.core.engine.requests import SDEditRequest

    with pytest.raises(ValueError, match="needs v_prediction"):
        prior_model.make_scheduler(1000, "epsilon", zero_terminal_snr=True)
    config = tiny(tmp_path / "run", 1)
    config.prior.prediction, config.prior.zero_terminal_snr = "v_prediction", True
    result = training.train(config, progress=False)
    assert np.isfinite(result.loss)
    folder = result.last_checkpoint / "prior"
    ddim = DDIMScheduler.from_pretrained(folder / "scheduler")
    assert float(ddim.alphas_cumprod[-1]) == 0.0 and ddim.config.timestep_spacing == "trailing"
    ddim.set_timesteps(5)
    assert int(ddim.timesteps[0]) == 999  # the first step is at T, where x_T is pure noise
    guide = np.full((16, 16, 3), 90, np.uint8)
    for strength in (1.0, 0.5):
        (out,) = Engine().sdedit(SDEditRequest(guide=guide, model=str(folder), strength=strength, steps=5))
        assert out.shape == (16, 16, 3)

    # Its training previews rescale guidance as Lin et al. pair with this schedule (and as the engine does).
    prior = prior_model.load_prior(folder)

    def preview(rescale: float | None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        return prior_model.sample(prior, ["lake"], 16, 16, 3, 3.0, gen, rescale=rescale)

    assert torch.equal(preview(None), preview(prior_model.ZERO_SNR_RESCALE))
    assert not torch.equal(preview(None), preview(0.0))


def test_init_from_a_folder_without_weights_says_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected one unet/\\*.safetensors, found 0"):
        training.train(tiny(tmp_path / "run", 1, init_from=str(tmp_path / "missing")), progress=False)


def test_cosine_decay_warms_up_then_falls_to_zero_at_the_last_step() -> None:
    config = train_config.TrainConfig(lr=1e-3, warmup=10, steps=110, lr_decay="cosine")
    rates = [training.learning_rate(config, s) for s in range(config.steps)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3)
    assert rates[60] == pytest.approx(5e-4)  # half-way through the decay
    assert all(a >= b for a, b in zip(rates[9:-1], rates[10:], strict=True))
    assert rates[-1] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 99 / 100)))
    constant = train_config.TrainConfig(lr=1e-3, warmup=10, steps=110)
    assert [training.learning_rate(constant, s) for s in (9, 50, 109)] == [1e-3] * 3


def test_cosine_run_is_saved_resumed_and_refused_when_unknown(tmp_path: Path) -> None:
    from noisebrush.core.cli import train as cli_train
    from noisebrush.core.errors import BadInput

    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    args = parser.parse_args(["train", "--out", str(out), "--lr-decay", "cosine", "--steps", "4"])
    assert cli_train.config_from_args(args).lr_decay == "cosine"
    training.train(tiny(out, 2, lr_decay="cosine"), progress=False)
    resumed = parser.parse_args(["train", "--out", str(out), "--steps", "3"])
    assert cli_train.config_from_args(resumed).lr_decay == "cosine"  # the run's own schedule
    with pytest.raises(BadInput, match="constant, cosine"):
        training.train(tiny(tmp_path / "bad", 2, lr_decay="step"), progress=False)
    assert not (tmp_path / "bad").exists()  # refused before anything is written
