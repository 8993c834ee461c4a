"""The recipes in configs/: every one validates and builds, every generator has one, and
short real runs of the features they use (GAN + perceptual, degradations, Charbonnier + FFT,
multistep with warm-up, gradient clipping, bf16-mixed, resuming a GAN run, a luma model)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import types
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from synthetic import tensorboard_scalars, write_photos

from superres.cli import main
from superres.data.degradations import make_lr_batch
from superres.errors import SuperresError
from superres.evaluate import evaluate, predict_uint8
from superres.imaging.color import rgb_to_y_torch
from superres.models.contract import input_channels as model_channels
from superres.models import create, list_specs, load, read_metadata, save
from superres.models.registry import is_registered
from superres.training import ConfigError, export_run, load_config, train
from superres.training.module import SRModule
from superres.training.run import _strategy
from superres.training.schedule import lr_factor

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "configs").glob("*.yaml"))
BY_NAME = {path.stem: path for path in RECIPES}


def _raw(name: str) -> dict:
    return yaml.safe_load(BY_NAME[name].read_text())


def _merge(raw: dict, changes: dict) -> dict:
    out = copy.deepcopy(raw)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def test_every_registered_generator_has_a_recipe():
    trained = {load_config(path).model.name for path in RECIPES}
    # Nothing to train: bicubic, and the reference models (another project's weights).
    generators = {spec.name for spec in list_specs(generators_only=True) if spec.external is None} - {"bicubic"}
    assert not generators - trained, f"no recipe in configs/ for {sorted(generators - trained)}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_and_builds(path, tmp_path, vgg19_file):
    config = load_config(path)
    t, o = config.trainer, config.optim
    assert config.output_dir == f"runs/{path.stem}", "a recipe writes to runs/<its file name>"
    if config.data.train != ["../shared/datasets/train/hr"]:
        # Only a data set one of our scripts makes from the training photos (the 16-bit scans of
        # docs/SCIENTIFIC.md), named in the recipe's header; never the benchmarks.
        made_by = re.search(r"benchmarks/\w+\.py", path.read_text())
        assert made_by and (REPO / made_by.group(0)).is_file(), "a recipe trains on the shared photos or names the script that makes its data"
        assert all(folder.startswith("runs/") for folder in config.data.train + config.val.folders)
    assert config.val.folders
    assert config.val.every_n_steps <= t.max_steps and t.checkpoint_every <= t.max_steps
    assert o.warmup_steps < t.max_steps and all(o.warmup_steps <= m < t.max_steps for m in o.milestones)
    assert o.milestones == sorted(o.milestones) and (o.schedule == "multistep") == bool(o.milestones)
    assert path.read_text().startswith("# "), "a recipe starts with a comment saying what it is"

    overrides = []
    if config.model.init_from and config.model.init_from.startswith("src/superres/models/weights/"):
        # The recipe fine-tunes a shipped weight file, as it is.
        meta = read_metadata(REPO / config.model.init_from)
        s = types.SimpleNamespace(name=meta["arch"], scale=meta["scale"], hyperparameters=meta["hyperparameters"])
        overrides.append(f"model.init_from={REPO / config.model.init_from}")
    elif config.model.init_from and is_registered(config.model.init_from):
        # The recipe starts from a reference model's weights (another project's, installed by
        # an extra): a model of the same shape, saved, stands in for them.
        s = types.SimpleNamespace(name=config.model.name, scale=config.model.scale, hyperparameters=config.model.hyperparameters)
        reference = create(config.model.init_from, scale=config.model.scale)
        start = save(reference, tmp_path / "start.safetensors", arch=config.model.init_from, scale=config.model.scale, hyperparameters={})
        overrides.append(f"model.init_from={start}")
    elif config.model.init_from:
        # The recipe starts from another recipe's run: build that model, save it, start from it.
        source_run = Path(config.model.init_from).parent.parent
        source = next(load_config(p) for p in RECIPES if Path(load_config(p).output_dir) == source_run)
        s = source.model
        start = save(create(s.name, scale=s.scale, **s.hyperparameters), tmp_path / "start.safetensors", arch=s.name, scale=s.scale, hyperparameters=s.hyperparameters)
        overrides.append(f"model.init_from={start}")
    if config.loss.perceptual.weight:
        assert config.loss.perceptual.vgg_weights == "weights/vgg19.pth"  # the documented placeholder
        overrides.append(f"loss.perceptual.vgg_weights={vgg19_file}")
    config = load_config(path, overrides)
    module = SRModule(config)

    assert module.generator.superres_arch == config.model.name
    if config.model.init_from:
        started, own = load_file(config.model.init_from), module.generator.state_dict()
        copied = [k for k in own if k not in module.reinitialised]
        assert all(torch.equal(own[k], started[k]) for k in copied)
        # Everything is copied from the same model at the same scale; from x2 all but the
        # upsampler; into a deeper model all but the added blocks.
        grown = s.hyperparameters != config.model.hyperparameters
        assert bool(module.reinitialised) == (s.scale != config.model.scale or grown) and copied
    c = model_channels(module.generator)  # 1 for a luma (Y-only) model
    lr = torch.rand(1, c, 8, 8)
    with torch.no_grad():
        assert module.generator.eval()(lr).shape == (1, c, 8 * config.model.scale, 8 * config.model.scale)
    optimizers, _ = module.configure_optimizers()
    assert len(optimizers) == (2 if config.loss.gan.weight else 1)
    if config.loss.gan.weight:
        patch = torch.rand(2, 3, config.data.patch_size, config.data.patch_size)
        with torch.no_grad():
            logits = module.discriminator(patch)  # the recipe's patches fit its discriminator
        assert logits.shape[0] == 2 and torch.isfinite(logits).all()
    assert (module.perceptual is not None) == bool(config.loss.perceptual.weight)
    assert module.degradations is config.data.degradations  # the config's own dataclass, not a copy
    assert module.degradations.any == any(v is not None for v in dataclasses.asdict(config.data.degradations).values())


def test_recipe_mistakes_fail_early_and_name_the_key():
    base = _merge(_raw("esrgan_x4"), {
        "model": {"init_from": None, "hyperparameters": {"blocks": 1, "features": 8, "growth": 4}},
        "loss": {"perceptual": {"weight": 0}},
    })
    with pytest.raises(ConfigError, match=r"data.patch_size \(66\) must be a multiple of model.scale \(4\)"):
        load_config(_merge(base, {"data": {"patch_size": 66}}))
    with pytest.raises(ConfigError, match="set loss.gan.discriminator_hyperparameters.input_size to 96"):
        SRModule(load_config(_merge(base, {"data": {"patch_size": 96}})))
    with pytest.raises(ConfigError, match="^'model.hyperparameters': .*'blokcs'"):
        SRModule(load_config(_merge(base, {"model": {"hyperparameters": {"blokcs": 2}}})))
    with pytest.raises(ConfigError, match=r"^'model': model 'rrdbnet' supports scales \(1, 2, 4, 8\), not 3"):
        SRModule(load_config(_merge(base, {"model": {"scale": 3}, "data": {"patch_size": 48}})))
    with pytest.raises(ConfigError, match="^'loss.gan.discriminator': unknown model 'patchgan'"):
        SRModule(load_config(_merge(base, {"loss": {"gan": {"discriminator": "patchgan"}}})))
    with pytest.raises(ConfigError, match="min_gradient applies to HR-only training"):
        load_config(_merge(base, {"data": {"train_lr": ["lr"], "min_gradient": 2.0}}))
    with pytest.raises(ConfigError, match="data.sampling"):
        load_config(_merge(base, {"data": {"sampling": "uniform"}}))


def test_gan_runs_use_ddp_that_tolerates_unused_parameters():
    gan = load_config(_raw("esrgan_x4"), ["trainer.devices=4", "trainer.strategy=ddp"])
    plain = load_config(_raw("edsr_x2"), ["trainer.devices=4", "trainer.strategy=ddp"])

    class Stub:
        discriminator = object()

    class Plain:
        discriminator = None

    assert _strategy(gan, Stub) == "ddp_find_unused_parameters_true"
    assert _strategy(load_config(_raw("esrgan_x4"), ["trainer.devices=2"]), Stub) == "ddp_find_unused_parameters_true"
    assert _strategy(load_config(_raw("esrgan_x4")), Stub) == "auto"  # one device: no DDP at all
    assert _strategy(plain, Plain) == "ddp"


# --- short real runs -----------------------------------------------------------------------

TINY = {
    "data": {"patch_size": 32, "batch_size": 2},
    "val": {"folders": []},
    "trainer": {"max_steps": 3, "checkpoint_every": 3, "log_every": 1, "threads": 1},
}


def _tiny(tmp_path: Path, photos: Path, recipe: str, changes: dict) -> dict:
    raw = _merge(_merge(_raw(recipe), TINY), changes)
    raw["output_dir"] = str(tmp_path / "run")
    raw["data"]["train"] = [str(photos)]
    raw["model"]["init_from"] = None
    return raw


def _changed(before: dict, after: dict, prefix: str) -> tuple[int, int]:
    """(changed, total) parameters under ``prefix``."""
    keys = [k for k in before if k.startswith(prefix)]
    return sum(not torch.equal(before[k], after[k]) for k in keys), len(keys)


def test_gan_run_with_perceptual_loss_trains_both_nets_and_resumes(tmp_path, photos, vgg19_file):
    raw = _tiny(tmp_path, photos, "esrgan_x4", {
        "model": {"hyperparameters": {"blocks": 1, "features": 8, "growth": 4}},
        "loss": {"perceptual": {"vgg_weights": str(vgg19_file)}, "gan": {"discriminator_hyperparameters": {"input_size": 32, "features": 8}}},
    })
    config = load_config(raw)
    starts = []
    for _ in range(2):
        L.seed_everything(config.trainer.seed, verbose=False)  # as train() does: this is the run's start
        starts.append({k: v.detach().clone() for k, v in SRModule(config).named_parameters()})
    assert _changed(*starts, "") == (0, len(starts[0]))  # (else "changed" below would prove nothing)
    train(config)

    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    state = last["state_dict"]
    # The relativistic loss sees only differences of logits, so the bias of the last layer,
    # shared by all of them, has no gradient: the one parameter that stays.
    del starts[0]["discriminator.classifier.3.bias"]
    for net in ("generator.", "discriminator."):
        changed, total = _changed(starts[0], state, net)
        assert changed == total > 0, f"{total - changed} of {total} {net} parameters did not move"
    ema = [k for k in state if k.startswith("ema_generator.")]
    assert any(not torch.equal(state[k], state[k.replace("ema_", "", 1)]) for k in ema)
    assert not any(k.startswith("perceptual.") for k in state), "the user's VGG19 is not copied into checkpoints"
    # One iteration = one generator and one discriminator step: Lightning's global_step counts
    # optimizer steps; our iteration (schedules, data stream, checkpoints) counts iterations.
    assert last["superres"]["iteration"] == 3 and last["global_step"] == 6
    scalars = tensorboard_scalars(tmp_path / "run")
    for tag in ("train/pixel", "train/perceptual", "train/gan", "train/d_loss", "train/loss"):
        assert len(scalars[tag]) == 3 and all(math.isfinite(v) for v in scalars[tag]), (tag, scalars.get(tag))
    assert min(scalars["train/perceptual"]) > 0

    # Resume to 5 iterations: both optimizers' and schedulers' states come back.
    raw["trainer"]["max_steps"] = 5
    train(load_config(raw), resume=True)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["superres"]["iteration"] == 5
    for opt in last["optimizer_states"]:
        assert {int(s["step"]) for s in opt["state"].values()} == {5}  # 3 + 2, not 2: the Adam moments were restored
    assert [s["last_epoch"] for s in last["lr_schedulers"]] == [5, 5]
    assert len(tensorboard_scalars(tmp_path / "run")["train/gan"]) == 5


def test_degradation_recipe_runs_and_degrades_the_lr(tmp_path, photos, vgg19_file):
    raw = _tiny(tmp_path, photos, "realesrgan_x4", {
        "model": {"hyperparameters": {"blocks": 1, "features": 8, "growth": 4}},
        "loss": {"perceptual": {"vgg_weights": str(vgg19_file)}, "gan": {"discriminator_hyperparameters": {"features": 8}}},
    })
    config = load_config(raw)
    hr = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    module = SRModule(config)
    degraded, _ = module.make_pair(hr)
    clean, _ = make_lr_batch(hr, 4)
    assert (degraded - clean).abs().mean() > 1 / 255
    torch.testing.assert_close(module.make_pair(hr)[0], degraded)  # seeded by (seed, iteration)
    train(config)
    scalars = tensorboard_scalars(tmp_path / "run")
    assert all(math.isfinite(v) for tag in ("train/loss", "train/d_loss") for v in scalars[tag])
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_real_gan_recipe_trains_with_feature_matching_instead_of_vgg(tmp_path, photos):
    raw = _tiny(tmp_path, photos, "swiftrep_real_gan_x4", {
        "model": {"hyperparameters": {"blocks": 1, "features": 8}},
        "loss": {"gan": {"discriminator_hyperparameters": {"features": 8}}},
        "trainer": {"precision": "32-true"},
    })
    config = load_config(raw)
    assert config.loss.perceptual.weight == 0 and config.loss.gan.feature_matching > 0
    train(config)
    scalars = tensorboard_scalars(tmp_path / "run")
    assert len(scalars["train/feature_matching"]) == 3
    assert all(math.isfinite(v) and v > 0 for tag in ("train/feature_matching", "train/gan", "train/d_loss") for v in scalars[tag])


def test_a_gan_stage_with_the_amplitude_loss_keeps_each_checkpoint_and_scores_niqe(tmp_path, photos):
    val = write_photos(tmp_path / "val", 1, 200, seed=2)  # NIQE needs 192 px or more
    raw = _tiny(tmp_path, photos, "swiftrep_real_gan_x4", {
        "model": {"hyperparameters": {"blocks": 1, "features": 8}},
        "loss": {"fft_amplitude_weight": 2.0, "gan": {"discriminator_hyperparameters": {"features": 8}}},
        "val": {"folders": [str(val)], "every_n_steps": 2, "degrade": "real", "niqe": True},
        "trainer": {"precision": "32-true", "max_steps": 4, "checkpoint_every": 2, "keep_every": 2},
    })
    train(load_config(raw))
    s = tensorboard_scalars(tmp_path / "run")
    assert all(v > 0 for v in s["train/fft_amplitude"])
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("iter_*.ckpt"))
    assert kept == ["iter_0000002.ckpt", "iter_0000004.ckpt"]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4]
    assert all(math.isfinite(r["val-real/niqe"]) and r["val-real/niqe"] > 0 for r in records)
    np.testing.assert_allclose(s["val/val-real/niqe"], [r["val-real/niqe"] for r in records], rtol=1e-4)  # and in TensorBoard

    # A kept checkpoint is exported as the last one is, with its own iteration's scores.
    assert main(["export", str(tmp_path / "run"), "--checkpoint", "iter_0000002.ckpt", "-o", str(tmp_path / "at2.safetensors")]) == 0
    training = read_metadata(tmp_path / "at2.safetensors")["training"]
    assert training["iterations"] == 2 and training["last_validation"] == records[0]
    assert read_metadata(tmp_path / "run" / "model.safetensors")["training"]["last_validation"] == records[1]
    at2, final = load_file(tmp_path / "at2.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert at2.keys() == final.keys() and any(not torch.equal(at2[k], final[k]) for k in at2)
    with pytest.raises(SuperresError, match=r"has no checkpoint 'iter_0000003.ckpt' \(kept: iter_0000002.ckpt, iter_0000004.ckpt\)$"):
        export_run(tmp_path / "run", checkpoint="iter_0000003.ckpt")


def test_charbonnier_and_fft_losses_add_up(tmp_path, photos):
    raw = _tiny(tmp_path, photos, "unet-sr_x2", {"model": {"hyperparameters": {"features": 8}}})
    assert raw["loss"]["pixel"] == "charbonnier" and raw["loss"]["fft_weight"] > 0
    train(load_config(raw))
    s = tensorboard_scalars(tmp_path / "run")
    assert all(p > 0 and f > 0 for p, f in zip(s["train/pixel"], s["train/fft"]))
    np.testing.assert_allclose(s["train/loss"], np.add(s["train/pixel"], s["train/fft"]), rtol=1e-5)


def test_multistep_schedule_with_warmup_follows_lr_factor(tmp_path, photos):
    raw = _tiny(tmp_path, photos, "imdn_x2", {
        "model": {"hyperparameters": {"features": 16, "blocks": 1}},
        "optim": {"lr": 1.0e-3, "warmup_steps": 2, "milestones": [3], "gamma": 0.5},
        "trainer": {"max_steps": 5},
    })
    assert raw["optim"]["schedule"] == "multistep"
    train(load_config(raw))
    expected = [1e-3 * lr_factor(i, max_steps=5, schedule="multistep", base_lr=1e-3, warmup_steps=2, milestones=[3], gamma=0.5) for i in range(5)]
    assert expected == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4, 5e-4])
    assert tensorboard_scalars(tmp_path / "run")["train/lr"] == pytest.approx(expected)  # the rate each iteration used


def test_gradient_clipping_caps_the_generator_gradient_norm(tmp_path, photos, monkeypatch):
    def grad_norm(module):
        return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.generator.parameters() if p.grad is not None])).item()

    seen = []
    clip = SRModule.clip_gradients

    def spy(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        before = grad_norm(self)
        clip(self, optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm)
        seen.append((before, grad_norm(self), gradient_clip_val))

    monkeypatch.setattr(SRModule, "clip_gradients", spy)
    raw = _tiny(tmp_path, photos, "vdsr_x2", {"model": {"hyperparameters": {"features": 8, "depth": 3}}, "optim": {"grad_clip": 1.0e-3}})
    train(load_config(raw))
    assert len(seen) == 3
    for before, after, limit in seen:
        assert limit == 1e-3 and before > limit and after == pytest.approx(limit, rel=1e-3)


def test_bf16_mixed_trains_in_bf16_and_validates_in_fp32(tmp_path, photos, monkeypatch):
    from superres.data.datasets import load_benchmark
    from superres.evaluate import score_images
    from superres.training import callbacks

    seen = {"train": set(), "val": set()}
    step = SRModule.training_step

    def training_step(self, batch, batch_idx):
        if not self.generator._forward_hooks:
            self.generator.register_forward_hook(lambda m, i, out: seen["train"].add(out.dtype))
        return step(self, batch, batch_idx)

    def scored(model, items, **kw):
        with torch.no_grad():
            seen["val"].add((torch.is_autocast_enabled("cpu"), model(torch.rand(1, 3, 8, 8)).dtype))
        return score_images(model, items, **kw)

    monkeypatch.setattr(SRModule, "training_step", training_step)
    monkeypatch.setattr(callbacks, "score_images", scored)
    val = write_photos(tmp_path / "val", 2, 24, seed=1)
    raw = _tiny(tmp_path, photos, "fsrcnn-s_x2", {"trainer": {"precision": "bf16-mixed"}, "val": {"folders": [str(val)], "every_n_steps": 3}})
    weights = train(load_config(raw))

    assert seen["train"] == {torch.bfloat16}
    assert seen["val"] == {(False, torch.float32)}
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    again = score_images(load(weights), load_benchmark(val, 2), scale=2, dataset="val")
    assert logged["iteration"] == 3 and logged["val/psnr"] == pytest.approx(again.psnr, abs=1e-4)


def test_a_luma_recipe_trains_on_y_and_ships_a_model_for_colour_images(tmp_path, photos):
    raw = _tiny(tmp_path, photos, "fsrcnn_x2_luma", {"val": {"folders": [str(photos)], "every_n_steps": 3}})
    config = load_config(raw)
    module = SRModule(config)
    hr = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8))
    lr_y, hr_y = module.make_pair(hr)
    lr_rgb, _ = make_lr_batch(hr, 2)
    assert lr_y.shape == (2, 1, 16, 16) and hr_y.shape == (2, 1, 32, 32)
    torch.testing.assert_close(lr_y, rgb_to_y_torch(lr_rgb) / 255)
    torch.testing.assert_close(hr_y, rgb_to_y_torch(hr.float() / 255) / 255)

    train(config)
    weights = tmp_path / "run" / "model.safetensors"
    model = load(weights)
    assert model.channels == 1
    # The validation inside training scored colour images through the same adapter as eval does.
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    (score,) = evaluate(lambda scale: model, [photos], [2])
    assert logged[f"{photos.name}/psnr"] == pytest.approx(score.psnr, abs=1e-3)
    assert predict_uint8(model, np.zeros((8, 8, 3), np.uint8)).shape == (16, 16, 3)


def test_a_luma_model_refuses_the_rgb_losses(tmp_path, photos, vgg19_file):
    raw = _tiny(tmp_path, photos, "fsrcnn_x2_luma", {"loss": {"perceptual": {"weight": 1.0, "vgg_weights": str(vgg19_file)}}})
    with pytest.raises(ConfigError, match="luma"):
        SRModule(load_config(raw))
