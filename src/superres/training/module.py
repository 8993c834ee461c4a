"""The LightningModule for SR: our science (losses, LR synthesis, EMA, GAN steps) inside
Lightning's loop (devices, precision, DDP, checkpoint files, logging).

Optimisation is manual so that the pixel-only and adversarial recipes share one path: one
generator step per iteration, then (with a GAN) one discriminator step. ``self.iteration``
counts iterations (Lightning's ``global_step`` counts optimizer steps, two per GAN
iteration); schedules, the data stream and checkpoints follow ``iteration``.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from superres.data.degradations import make_lr_batch
from superres.data.pairs import LRHRPair, batch_seed
from superres.errors import SuperresError
from superres.models import create
from superres.models.checkpoint import CheckpointError, _few, read_metadata, read_tensors
from superres.models.contract import AdoptsState, model_contract, rgb_to_luma_input
from superres.models import load as load_model
from superres.models.registry import HyperparameterError, is_registered, pretrained_path
from superres.training.checkpoints import read_training_checkpoint
from superres.training.config import ConfigError, TrainConfig
from superres.training.losses import (
    PerceptualLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    fft_amplitude_loss,
    fft_loss,
    generator_adversarial_loss,
    pixel_loss,
)
from superres.training.schedule import ema_update, lr_factor

__all__ = ["SRModule", "init_from_checkpoint"]


def _generator_and_scale(path: str | Path, *, prefer_ema: bool = True) -> tuple[dict[str, torch.Tensor], int | None]:
    """The generator's state dict and the scale it was trained at (None when the file does
    not say, e.g. a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: '{path}'")
    if path.suffix.lower() in (".param", ".bin"):  # an ncnn model, read into our module
        model = load_model(path)
        return model.state_dict(), model.scale
    if path.suffix == ".safetensors":
        state = read_tensors(path)  # a damaged file is a CheckpointError, not safetensors' own
        return state, read_metadata(path).get("scale")
    ckpt = read_training_checkpoint(path)
    return ckpt.generator_state(prefer_ema=prefer_ema), ckpt.scale


def init_from_checkpoint(model: nn.Module, path: str | Path, *, partial: bool = False) -> list[str]:
    """Copy every tensor of ``path`` (a checkpoint, weight or ncnn file, or a registry name with
    weights at the model's scale) whose name and shape match ``model`` (e.g. all but the
    upsampler of an x2 model into an x4 one), except, when ``path`` was trained at another
    scale (or does not say), those the model declares ``scale_specific_keys``; returns the
    names left at their initialisation.

    A model that adopts state (:class:`~superres.models.contract.AdoptsState`) first rewrites the source into its own form (SwiftRep's
    fused blocks into training blocks). Unless ``partial``, a start that leaves source
    tensors unused or most of the model's parameters at their initialisation (either not
    counting the upsampler of another scale) is refused, naming the tensors and counting them:
    it is almost always the wrong file or the wrong hyperparameters, and training from it
    silently starts from noise."""
    if not Path(path).exists() and is_registered(str(path)):  # a registry name: its weights at the model's scale
        path = pretrained_path(str(path), model.scale)
    given, source_scale = _generator_and_scale(path)
    source = model.adopt_state(given) if isinstance(model, AdoptsState) else given
    own = model.state_dict()
    same_scale = source_scale is not None and source_scale == model_contract(model).scale
    skip = set() if same_scale else set(getattr(model, "scale_specific_keys", ()))
    matched = {k: v for k, v in source.items() if k in own and v.shape == own[k].shape and k not in skip}
    if not matched:
        raise CheckpointError(f"'{path}' shares no tensor with {type(model).__name__}")
    # Another scale's upsampler does not fit this one: expected, not a mistake.
    rescaled = {k for k in source if k in own and not same_scale and (k in skip or source[k].shape != own[k].shape)}
    unused = sorted(set(given) - set(matched) - rescaled)
    left = sorted(set(own) - set(matched))
    left_share = sum(own[k].numel() for k in left if k not in rescaled | skip) / max(1, sum(v.numel() for v in own.values()))
    if not partial and (unused or left_share > 0.5):
        problems = []
        if unused:
            problems.append(f"{len(unused)} of its {len(given)} tensors fit nowhere in the model ({_few(unused)})")
        if left_share > 0.5:
            problems.append(f"{len(left)} of the model's {len(own)} tensors ({left_share:.0%} of its values) would keep their initialisation ({_few(left)})")
        raise CheckpointError(
            f"model.init_from '{path}' does not fit {type(model).__name__} (check model.hyperparameters): "
            + "; ".join(problems) + "; set model.init_partial: true to start from it anyway"
        )
    own.update(matched)
    model.load_state_dict(own)
    if isinstance(model, AdoptsState):
        model.init_unmatched(left)  # e.g. SwiftRep makes added blocks start as identities
    return left


def _create(name: str, keys: tuple[str, str], **kwargs) -> nn.Module:
    """``create`` with a config mistake reported as a one-line ConfigError naming the config
    key: ``keys[0]`` for an unknown name or scale, ``keys[1]`` for a wrong hyperparameter."""
    try:
        return create(name, **kwargs)
    except HyperparameterError as exc:
        raise ConfigError(f"'{keys[1]}': {exc}") from None
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)  # str() of a KeyError adds quotes
        raise ConfigError(f"'{keys[0]}': {message}") from None
    except TypeError as exc:
        raise ConfigError(f"'{keys[1]}': {exc}") from None


class SRModule(L.LightningModule):
    """Trains ``config.model`` under ``config.loss`` and ``config.optim``."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.automatic_optimization = False
        m = config.model
        self.generator = _create(m.name, ("model", "model.hyperparameters"), scale=m.scale, **m.hyperparameters)
        # A one-channel model learns Y, as SRCNN, FSRCNN and ESPCN did in their papers.
        self.luma = model_contract(self.generator).colour_space == "Y"
        if self.luma and (config.loss.gan.weight > 0 or config.loss.perceptual.weight > 0):
            raise ConfigError("a one-channel (luma) model trains on Y only; the perceptual and adversarial losses need RGB")
        self.reinitialised: list[str] = []
        if m.init_from:
            self.reinitialised = init_from_checkpoint(self.generator, m.init_from, partial=m.init_partial)
        self.ema_generator = None
        if config.optim.ema_decay:
            self.ema_generator = copy.deepcopy(self.generator).requires_grad_(False)
        gan = config.loss.gan
        self.discriminator = None
        if gan.weight > 0:
            self.discriminator = _create(
                gan.discriminator, ("loss.gan.discriminator", "loss.gan.discriminator_hyperparameters"), **gan.discriminator_hyperparameters
            )
            size = getattr(self.discriminator, "input_size", None)  # the dense-headed ones take one size
            if size is not None and size != config.data.patch_size:
                raise ConfigError(
                    f"loss.gan.discriminator '{gan.discriminator}' is built for {size} px patches but data.patch_size "
                    f"is {config.data.patch_size}; set loss.gan.discriminator_hyperparameters.input_size to {config.data.patch_size}"
                )
        self.perceptual = None
        if config.loss.perceptual.weight > 0:
            p = config.loss.perceptual
            self.perceptual = PerceptualLoss(p.vgg_weights, p.layers, p.criterion)
        self.degradations = config.data.degradations
        self.iteration = 0
        # Where the weights came from (commit, data), recorded in every checkpoint.
        self.provenance: dict = {}

    @property
    def eval_model(self) -> nn.Module:
        """The weights to validate and export: the EMA when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.generator(lr)

    def _lr_lambda(self, base_lr: float):
        o = self.config.optim

        def factor(step: int) -> float:
            return lr_factor(
                step, max_steps=self.config.trainer.max_steps, schedule=o.schedule, base_lr=base_lr,
                warmup_steps=o.warmup_steps, min_lr=o.min_lr, milestones=o.milestones, gamma=o.gamma,
            )

        return factor

    def configure_optimizers(self):
        o = self.config.optim
        opt_cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        opt_g = opt_cls(self.generator.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        optimizers = [opt_g]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt_g, self._lr_lambda(o.lr))]
        if self.discriminator is not None:
            lr_d = self.config.loss.gan.lr
            opt_d = opt_cls(self.discriminator.parameters(), lr=lr_d, betas=o.betas, weight_decay=o.weight_decay)
            optimizers.append(opt_d)
            schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt_d, self._lr_lambda(lr_d)))
        return optimizers, schedulers

    def make_pair(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (lr, hr) in [0, 1] from a batch of 8- or 16-bit HR patches (or paired LR/HR
        patches); for a luma model, the Y of colour ones as the model takes it
        (:func:`superres.models.contract.rgb_to_luma_input`)."""
        lr, hr, _ = self.make_batch(batch)
        return lr, hr

    def make_batch(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`make_pair`'s ``(lr, hr)`` and, for a batch of teacher labels ``(lr, teacher,
        hr)`` (:class:`superres.data.teacher_labels.TeacherLabelDataset`), the teacher's outputs
        as a float batch (else None)."""
        teacher = None
        if isinstance(batch, (list, tuple)) and len(batch) == 3:
            lr, teacher, hr = (patches.float() / 255.0 for patches in batch)
            return lr, hr, teacher
        # LR synthesis must be exact (the protocol's rounding), so never under autocast.
        with torch.autocast(device_type=self.device.type, enabled=False):
            if isinstance(batch, LRHRPair):  # made by the loader's workers (superres.data.pairs)
                lr, hr = batch.lr.float(), batch.hr.float()
            elif isinstance(batch, (list, tuple)):
                lr, hr = (patches.float() / (65535.0 if patches.dtype == torch.uint16 else 255.0) for patches in batch)
            else:
                generator = torch.Generator().manual_seed(batch_seed(self.config.trainer.seed, self.iteration))
                lr, hr = make_lr_batch(batch, self.config.model.scale, self.degradations, generator)
            # As the upscaler and the protocol feed images (superres.inference.channels): a
            # grayscale folder goes to a luma model as it is and to an RGB model repeated.
            if self.luma and lr.shape[1] == 3:
                lr, hr = rgb_to_luma_input(lr), rgb_to_luma_input(hr)
            elif not self.luma and lr.shape[1] == 1:
                lr, hr = lr.expand(-1, 3, -1, -1), hr.expand(-1, 3, -1, -1)
            return lr, hr, teacher

    def training_step(self, batch, batch_idx):
        cfg = self.config
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        lr, hr, teacher = self.make_batch(batch)
        sr = self.generator(lr).float()

        losses = {"pixel": cfg.loss.pixel_weight * pixel_loss(sr, hr, cfg.loss.pixel)}
        if cfg.loss.teacher_weight:
            losses["teacher"] = cfg.loss.teacher_weight * pixel_loss(sr, teacher, cfg.loss.pixel)
        # What the discriminator takes as real: the HR, or in distillation the teacher's look.
        real = teacher if cfg.loss.gan.real == "teacher" else hr
        if cfg.loss.fft_weight:
            losses["fft"] = cfg.loss.fft_weight * fft_loss(sr, hr)
        if cfg.loss.fft_amplitude_weight:
            losses["fft_amplitude"] = cfg.loss.fft_amplitude_weight * fft_amplitude_loss(sr, hr)
        if self.perceptual is not None:
            losses["perceptual"] = cfg.loss.perceptual.weight * self.perceptual(sr, hr)
        gan_on = self.discriminator is not None and self.iteration >= cfg.loss.gan.start_step
        if gan_on:
            self.discriminator.requires_grad_(False)
            gan = cfg.loss.gan
            fake_logits, fake_features = self.discriminator.forward_features(sr)
            real_logits = real_features = None
            if gan.kind == "relativistic" or gan.feature_matching:
                real_logits, real_features = self.discriminator.forward_features(real)
            losses["gan"] = gan.weight * generator_adversarial_loss(
                gan.kind, fake_logits.float(), real_logits.float() if gan.kind == "relativistic" else None
            )
            if gan.feature_matching:
                losses["feature_matching"] = gan.feature_matching * feature_matching_loss(fake_features, real_features)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise SuperresError(f"training diverged at iteration {self.iteration} (loss {loss.item()}); lower optim.lr or enable optim.grad_clip")

        opt_g = optimizers[0]
        lr_used = opt_g.param_groups[0]["lr"]  # before the scheduler moves it on
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if cfg.optim.grad_clip:
            self.clip_gradients(opt_g, gradient_clip_val=cfg.optim.grad_clip, gradient_clip_algorithm="norm")
        opt_g.step()
        schedulers[0].step()

        if self.discriminator is not None:
            opt_d = optimizers[1]
            if gan_on:
                self.discriminator.requires_grad_(True)
                d_loss = discriminator_adversarial_loss(
                    cfg.loss.gan.kind, self.discriminator(real).float(), self.discriminator(sr.detach()).float()
                )
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(d_loss)
                opt_d.step()
                self.log("train/d_loss", d_loss.detach(), prog_bar=False)
            schedulers[1].step()

        if self.ema_generator is not None:
            # Early on the EMA would average in random weights; ramp its decay up.
            decay = min(cfg.optim.ema_decay, (1 + self.iteration) / (10 + self.iteration))
            ema_update(self.ema_generator, self.generator, decay)

        self.iteration += 1
        for name, value in losses.items():
            self.log(f"train/{name}", value.detach())
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/lr", lr_used)
        return loss.detach()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen VGG19 is the user's file, not training state: 80 MB in every checkpoint.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("perceptual.")}
        checkpoint["superres"] = {
            "iteration": self.iteration,
            "config": self.config.model_dump(mode="json"),
            "provenance": self.provenance,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
                "python": list(random.getstate()),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("superres")
        if state is None:
            raise CheckpointError("not a superres training checkpoint (no 'superres' section)")
        self.iteration = int(state["iteration"])
        if self.perceptual is not None:  # left out by on_save_checkpoint; strict loading wants it back
            checkpoint["state_dict"].update({f"perceptual.{k}": v for k, v in self.perceptual.state_dict().items()})
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        kind, keys, pos, has_gauss, gauss = rng["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = rng["python"]
        random.setstate((version, tuple(internal), gauss_next))
