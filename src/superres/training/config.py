"""The typed training configuration, built from YAML at the edge.

Every section is a pydantic model that forbids unknown keys and does not coerce types
loosely, so ``lr: 1e-3`` is a float and ``patch_sise: 96`` is an error naming the key.
``--set data.batch_size=32`` overrides are applied to the raw mapping before validation,
so they are checked exactly like the file. Validation runs in pydantic's strict JSON mode:
YAML lists fill tuple fields and integers fill float fields, but ``"16"`` is not an int.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from superres.data.degradations import Degradations, check_preset
from superres.errors import SuperresError

__all__ = ["ConfigError", "TrainConfig", "load_config", "apply_overrides", "read_config_mapping"]


class ConfigError(SuperresError):
    """A training config that does not validate; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class ModelConfig(_Section):
    # A registry name (superres models lists them).
    name: str
    # The upscaling factor the network is built for.
    scale: int = Field(ge=1)
    # Keyword arguments of the architecture's constructor (e.g. d, s, m for FSRCNN); unknown ones are errors.
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    # Initialise from a checkpoint (e.g. the x2 model when training x4): every tensor whose
    # name and shape match is copied; the rest (the upsampler) keeps its initialisation.
    init_from: str | None = None
    # Start even if init_from leaves some of its tensors unused or most of the model at its
    # initialisation (refused by default: usually the wrong file or hyperparameters).
    init_partial: bool = False


class DataConfig(_Section):
    # Folders of HR training images (searched recursively); LR inputs are made from them.
    train: list[str]
    # Optional ready-made LR folders, one per train folder (paired training).
    train_lr: list[str] | None = None
    patch_size: int = 96  # HR pixels; LR patches are patch_size / scale
    # Patches per optimisation step (per device).
    batch_size: int = 16
    # memory: decode every image once and keep it; subimages: 480 px .npy crops on disk, memory-mapped; none: decode a file per patch.
    cache: Literal["memory", "subimages", "none"] = "memory"
    # Folder of the subimages cache's .npy files.
    cache_dir: str | None = None
    # DataLoader worker processes; above 0 they also make the LR inputs (degradations) beside the training process.
    num_workers: int = Field(0, ge=0)
    # Random flips and 90-degree rotations of each patch.
    augment: bool = True
    # Which image a patch comes from: "area" (every pixel equally likely) or "image" (every
    # image equally likely, so a few large images do not dominate the stream).
    sampling: Literal["area", "image"] = "area"
    # Redraw HR patches whose mean neighbour difference (8-bit levels) is below this.
    min_gradient: float | None = None
    # The data layer's own dataclass: its fields, defaults and checks are the config's.
    degradations: Degradations = Field(default_factory=Degradations)
    # Distillation: folders of cached teacher labels (superres.data.teacher_labels, made by
    # `python -m superres.training.distill labels`): each sample's LR input and the teacher's
    # output for it, with the HR cut again from the photos in `train`. Replaces the
    # degradations (the labels carry their own); patch_size is then the HR side of the crop.
    teacher_labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.patch_size < 8 or self.batch_size < 1:
            raise ValueError("patch_size must be >= 8 and batch_size >= 1")
        if self.train_lr is not None and self.min_gradient is not None:
            raise ValueError("min_gradient applies to HR-only training; it cannot be used with train_lr")
        if self.teacher_labels is not None and (self.train_lr is not None or self.degradations.any):
            raise ValueError("teacher_labels brings its own LR inputs; it cannot be used with train_lr or degradations")
        return self


class ValConfig(_Section):
    # Validation folders of HR images, scored under the paper protocol (PSNR/SSIM on Y).
    folders: list[str] = Field(default_factory=list)
    # Validate every this many iterations.
    every_n_steps: int = Field(1000, ge=1)
    max_images: int | None = None  # per folder; None = all
    # Score on degraded LR inputs (a preset of superres.data.degradations.presets, e.g. "real")
    # instead of the protocol's clean bicubic ones.
    degrade: str | None = None
    # Also score the results' NIQE (lower is more natural; needs the quality extra): what a
    # perceptual (GAN) run is chosen by, where PSNR only measures its cost.
    niqe: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.degrade is not None:
            check_preset(self.degrade)
        return self

    def set_name(self, folder: str) -> str:
        """The name ``folder``'s scores are recorded under (``metrics.jsonl``'s ``<name>/psnr``):
        the folder's own name, with the degradation preset when there is one."""
        return Path(folder).name + (f"-{self.degrade}" if self.degrade else "")


class PerceptualConfig(_Section):
    # Weight of the VGG feature loss; 0 turns it off.
    weight: float = 0.0
    vgg_weights: str | None = None  # a VGG19 state dict file (torchvision key layout)
    # VGG19 layers compared, each with its weight (ESRGAN: conv5_4 before activation).
    layers: dict[str, float] = Field(default_factory=lambda: {"conv5_4": 1.0})
    # Distance between the features.
    criterion: Literal["l1", "mse"] = "l1"


class GANConfig(_Section):
    # Weight of the generator's adversarial loss; 0 trains without a discriminator.
    weight: float = 0.0
    # The adversarial loss: relativistic average (ESRGAN), least squares, or the original.
    kind: Literal["vanilla", "lsgan", "relativistic"] = "relativistic"
    # A registered discriminator.
    discriminator: str = "vgg-discriminator"
    # Keyword arguments of the discriminator's constructor.
    discriminator_hyperparameters: dict[str, Any] = Field(default_factory=dict)
    # The discriminator's learning rate.
    lr: float = 1e-4
    start_step: int = 0  # pixel-only warm-up before the adversarial loss starts
    # pix2pixHD's feature matching: L1 between the discriminator's activations on SR and the
    # real images, a perceptual term that needs no ImageNet weights.
    feature_matching: float = 0.0
    # What the discriminator learns as real: the HR patches, or (distillation) the teacher's
    # outputs, whose look the student is to take on.
    real: Literal["hr", "teacher"] = "hr"


class LossConfig(_Section):
    # The pixel loss between the result and the HR patch.
    pixel: Literal["l1", "mse", "charbonnier"] = "l1"
    # Its weight (0 leaves only the other terms).
    pixel_weight: float = 1.0
    # Distillation: weight of the same pixel loss between the result and the teacher's output
    # (needs data.teacher_labels).
    teacher_weight: float = 0.0
    # Weight of an L1 loss between the results' and the targets' 2-D Fourier transforms.
    fft_weight: float = 0.0
    # Weight of an L1 loss between the amplitude spectra (losses.fft_amplitude_loss): a
    # perceptual term for GAN stages that needs no ImageNet network.
    fft_amplitude_weight: float = 0.0
    perceptual: PerceptualConfig = Field(default_factory=PerceptualConfig)
    gan: GANConfig = Field(default_factory=GANConfig)


class OptimConfig(_Section):
    # The generator's optimiser.
    optimizer: Literal["adam", "adamw"] = "adam"
    # Peak learning rate.
    lr: float = 2e-4
    # Adam's moment decay rates.
    betas: tuple[float, float] = (0.9, 0.99)
    # Decoupled for adamw, L2 for adam.
    weight_decay: float = 0.0
    # The learning-rate schedule over trainer.max_steps.
    schedule: Literal["constant", "cosine", "multistep"] = "cosine"
    # Linear warm-up from 0 to lr over this many iterations.
    warmup_steps: int = 0
    min_lr: float = 1e-6  # cosine floor
    milestones: list[int] = Field(default_factory=list)  # multistep
    gamma: float = 0.5  # multistep
    # Clip the gradients' global norm to this; None does not clip.
    grad_clip: float | None = None
    # Decay of an exponential moving average of the weights, which export prefers; None turns it off.
    ema_decay: float | None = 0.999


class TrainerConfig(_Section):
    # Iterations (optimisation steps) to train for.
    max_steps: int = Field(10000, ge=1)
    # Lightning's precision: fp32, or bf16/fp16 autocast.
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    # Lightning's accelerator: auto, cpu, gpu, mps.
    accelerator: str = "auto"
    # How many devices (or which) per node; DDP across them.
    devices: int | str | list[int] = 1
    # Machines; SLURM or torchrun start one process per device on each.
    num_nodes: int = Field(1, ge=1)
    # Lightning's strategy (auto chooses from the devices; ddp for several).
    strategy: str = "auto"
    # Seeds the weights' initialisation, the patches and the degradations.
    seed: int = 0
    threads: int | None = Field(None, ge=1)  # torch intra-op threads on the CPU; None = torch's default
    # Write checkpoints/last.ckpt every this many iterations.
    checkpoint_every: int = Field(1000, ge=1)
    # Also keep checkpoints/iter_NNNNNNN.ckpt every this many iterations (0 = only last.ckpt):
    # for runs whose best point is chosen afterwards (GAN stages).
    keep_every: int = Field(0, ge=0)
    # Log losses and the learning rate to TensorBoard every this many iterations.
    log_every: int = Field(50, ge=1)


class TrainConfig(_Section):
    # The run folder: resolved config, checkpoints, TensorBoard logs, metrics.jsonl, model.safetensors.
    output_dir: str = "runs/default"
    model: ModelConfig
    data: DataConfig
    val: ValConfig = Field(default_factory=ValConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _check(self):
        # Caught here rather than at the first batch, after the data and models are loaded.
        if self.data.patch_size % self.model.scale:
            raise ValueError(f"data.patch_size ({self.data.patch_size}) must be a multiple of model.scale ({self.model.scale})")
        distilling = self.loss.teacher_weight > 0 or (self.loss.gan.weight > 0 and self.loss.gan.real == "teacher")
        if distilling and self.data.teacher_labels is None:
            raise ValueError("loss.teacher_weight and loss.gan.real: teacher need data.teacher_labels (the teacher's cached outputs)")
        return self


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; people write learning rates that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = _yaml(value)
    return raw


def _format_error(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{source}: unknown key '{key}'"
    if first["type"] == "missing":
        return f"{source}: missing key '{key}'"
    return f"{source}: '{key}': {first['msg']} (got {first.get('input')!r})"


def read_config_mapping(path: str | os.PathLike) -> dict:
    """A config file's raw mapping, before validation (sections other tools add, such as
    ``superres tune``'s ``search:``, included), with one-line errors for a file that cannot
    be read or is not a YAML mapping."""
    path = Path(path)
    try:
        raw = _yaml(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config '{path}': {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"'{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"'{path}' must hold a mapping of sections")
    return raw


def load_config(source: str | os.PathLike | dict, overrides: list[str] | None = None) -> TrainConfig:
    """Read and validate a config from a YAML file (or a mapping), with ``--set`` overrides."""
    if isinstance(source, dict):
        raw, name = copy.deepcopy(source), "config"  # overrides must not edit the caller's mapping
    else:
        raw, name = read_config_mapping(source), str(source)
    raw = apply_overrides(raw, overrides or [])
    try:
        return TrainConfig.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, name)) from None
    except TypeError as exc:  # a value YAML produced that JSON cannot carry (a date, say)
        raise ConfigError(f"{name}: {exc}") from None
