"""Resolve "a model" as users name it: a checkpoint file of any format (:func:`load`), or a
registry name with its shipped weights or a file at a given scale (:func:`load_for_scale`)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch
from torch import nn

from superres.errors import SuperresError
from superres.models.checkpoint import load_superres, read_metadata
from superres.models.contract import model_contract
from superres.models.foreign import load_foreign
from superres.models.ncnn import load_ncnn
from superres.models.interpolate import interpolate
from superres.models.registry import create, create_shapes, get_spec, is_registered, list_specs, pretrained_path, require_external

__all__ = ["load", "declared_scale", "load_for_scale", "load_blended", "has_parameters", "check_strength", "fidelity_partner"]


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a checkpoint: superres safetensors, or an authors' release recognised from its keys.

    A ``.safetensors`` file with superres metadata is built through the registry; anything
    else (``.pth``, ``.pt``, ``.ckpt``, safetensors without our metadata) goes to
    :func:`superres.models.foreign.load_foreign`; an ncnn model (``.param``/``.bin``) to
    :func:`superres.models.ncnn.load_ncnn`; an ONNX graph superres exported (``.onnx``) to
    :func:`superres.models.onnx_graph.load_onnx_graph`, run by ONNX Runtime. Either way the model has ``scale``,
    ``superres_arch`` and ``superres_hyperparameters``, and a bad file raises CheckpointError.
    """
    if str(path).lower().endswith(".safetensors") and "arch" in read_metadata(path):
        return load_superres(path, map_location=map_location)
    if str(path).lower().endswith((".param", ".bin")):
        return load_ncnn(path, map_location=map_location)
    if str(path).lower().endswith(".onnx"):
        from superres.models.onnx_graph import load_onnx_graph  # imports onnxruntime only for a graph

        return load_onnx_graph(path, map_location=map_location)
    return load_foreign(path, map_location=map_location)


def declared_scale(path: str | os.PathLike) -> int | None:
    """The scale a model file states without being loaded: a superres safetensors file's
    metadata or a superres ONNX graph's; None for any other file (its scale is learnt by
    loading it) or a registry name."""
    text = str(path).lower()
    if not Path(path).is_file():
        return None
    if text.endswith(".safetensors"):
        return read_metadata(path).get("scale")
    if text.endswith(".onnx"):
        from superres.models.onnx_graph import graph_metadata

        scale = graph_metadata(path).get("superres.scale", "")
        return int(scale) if scale.isdigit() else None
    return None


@cache
def has_parameters(name: str) -> bool:
    """Whether the registered model ``name`` has learnable parameters (bicubic has none).

    Built on PyTorch's meta device (no memory, no weights) and cached: building EDSR for real
    only to learn that it has parameters would cost seconds and hundreds of MB, and counting
    its multiply-adds (``model_summary``) took most of a second of every ``superres upscale`` start-up."""
    spec = get_spec(name)
    return any(True for _ in create_shapes(name, spec.scales[0] if spec.is_generator else None).parameters())


def load_for_scale(model: str, scale: int, map_location: str = "cpu") -> nn.Module:
    """The model for ``scale``: a parameter-free registry model is built, a learned one gets its
    shipped weights, and a path is loaded (its scale must be ``scale``)."""
    if is_registered(model):
        spec = get_spec(model)
        if scale not in spec.scales:
            raise SuperresError(f"model {model!r} supports scales {spec.scales}, not {scale}")
        weights = pretrained_path(model, scale)
        if weights.is_file():  # asked first: whether a model has parameters costs a second to learn
            return load(weights, map_location=map_location)
        if not has_parameters(model):
            return create(model, scale=scale).eval()
        require_external(model)
        available = spec.pretrained_scales()
        hint = f"shipped scales: {', '.join(f'x{s}' for s in available)}" if available else "no shipped weights; pass a checkpoint file"
        raise SuperresError(f"no pretrained weights for {model!r} at x{scale} ({hint})")
    if not Path(model).exists():
        raise SuperresError(f"{model!r} is neither a registered model nor a file (see 'superres models')")
    net = load(model, map_location=map_location)
    declared = model_contract(net).scale
    if declared is not None and declared != scale:
        raise SuperresError(f"'{model}' is a x{declared} model, not x{scale}")
    return net


def fidelity_partner(model: str | os.PathLike, fidelity: str | os.PathLike | None = None) -> str:
    """What a perceptual ``model`` blends with: ``fidelity`` when given (a registry name or a
    checkpoint file), else the fidelity partner its registry entry names (``ModelSpec.fidelity``;
    for a weight file, the entry of the architecture in its metadata)."""
    if fidelity is not None:
        return os.fspath(fidelity)
    model = os.fspath(model)
    arch = model
    if not is_registered(model) and model.lower().endswith(".safetensors") and Path(model).is_file():
        arch = read_metadata(model).get("arch", "")
    partner = get_spec(arch).fidelity if is_registered(arch) else None
    if partner is None:
        partnered = [s.name for s in list_specs(generators_only=True) if s.fidelity]
        raise SuperresError(
            f"{model!r} has no fidelity partner to blend with: strength applies to "
            f"{', '.join(partnered) or 'a perceptual model'}, or name the partner (--fidelity)"
        )
    return partner


def check_strength(model: str | os.PathLike, strength: float | None, fidelity: str | os.PathLike | None = None) -> str | None:
    """Raise unless ``strength`` can apply to ``model``, before anything is loaded: None always
    can (and then ``fidelity`` must be None); a number must lie in [0, 1] and ``model`` must
    have a fidelity partner, which is returned (:func:`fidelity_partner`)."""
    if strength is None:
        if fidelity is not None:
            raise SuperresError("a fidelity partner is used only with a strength (--strength)")
        return None
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= float(strength) <= 1.0:
        raise SuperresError(f"strength must be a number in [0, 1] (0 = fidelity, 1 = perceptual), got {strength!r}")
    return fidelity_partner(model, fidelity)


def load_blended(
    model: str | os.PathLike,
    scale: int,
    strength: float,
    *,
    fidelity: str | os.PathLike | None = None,
    map_location: str = "cpu",
    perceptual: nn.Module | None = None,
) -> nn.Module:
    """The perceptual ``model`` at ``scale`` with its weights blended toward its fidelity
    partner's (:func:`fidelity_partner`): ``strength`` 1 is the perceptual model, 0 the
    partner, values between trade invented texture for fidelity (ESRGAN's network
    interpolation, :func:`superres.models.interpolate.interpolate`). Each is a registry name
    (its shipped weights) or a checkpoint file; ``perceptual`` is ``model`` already loaded,
    which is then not read again."""
    partner = check_strength(model, strength, fidelity)
    if perceptual is None:
        perceptual = load_for_scale(os.fspath(model), scale, map_location=map_location)
    if float(strength) == 1.0:
        return perceptual
    return interpolate(load_for_scale(partner, scale, map_location=map_location), perceptual, float(strength)).eval()
