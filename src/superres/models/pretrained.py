"""Resolve "a model" as users name it: a checkpoint file of any format (:func:`load`), or a
registry name with its shipped weights or a file at a given scale (:func:`load_for_scale`)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from superres.errors import SuperresError
from superres.models.checkpoint import load_superres, read_metadata
from superres.models.foreign import load_foreign
from superres.models.registry import create, get_spec, is_registered, pretrained_path
from superres.models.summary import model_summary

__all__ = ["load", "load_for_scale", "has_parameters"]


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a checkpoint: superres safetensors, or an authors' release recognised from its keys.

    A ``.safetensors`` file with superres metadata is built through the registry; anything
    else (``.pth``, ``.pt``, ``.ckpt``, safetensors without our metadata) goes to
    :func:`superres.models.foreign.load_foreign`. Either way the model has ``scale``,
    ``superres_arch`` and ``superres_hyperparameters``, and a bad file raises CheckpointError.
    """
    if str(path).lower().endswith(".safetensors") and "arch" in read_metadata(path):
        return load_superres(path, map_location=map_location)
    return load_foreign(path, map_location=map_location)


def has_parameters(name: str) -> bool:
    """Whether the registered model ``name`` has learnable parameters (bicubic has none).

    Counted on PyTorch's meta device and cached (``model_summary``): building EDSR for real
    only to learn that it has parameters would cost seconds and hundreds of MB."""
    spec = get_spec(name)
    return model_summary(name, spec.scales[0] if spec.is_generator else None).parameters > 0


def load_for_scale(model: str, scale: int, map_location: str = "cpu") -> nn.Module:
    """The model for ``scale``: a parameter-free registry model is built, a learned one gets its
    shipped weights, and a path is loaded (its scale must be ``scale``)."""
    if is_registered(model):
        spec = get_spec(model)
        if scale not in spec.scales:
            raise SuperresError(f"model {model!r} supports scales {spec.scales}, not {scale}")
        if not has_parameters(model):
            return create(model, scale=scale).eval()
        weights = pretrained_path(model, scale)
        if not weights.is_file():
            available = spec.pretrained_scales()
            hint = f"shipped scales: {', '.join(f'x{s}' for s in available)}" if available else "no shipped weights; pass a checkpoint file"
            raise SuperresError(f"no pretrained weights for {model!r} at x{scale} ({hint})")
        return load(weights, map_location=map_location)
    if not Path(model).exists():
        raise SuperresError(f"{model!r} is neither a registered model nor a file (see 'superres models')")
    net = load(model, map_location=map_location)
    if getattr(net, "scale", scale) != scale:
        raise SuperresError(f"'{model}' is a x{net.scale} model, not x{scale}")
    return net
