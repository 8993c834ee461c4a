"""Resolve "a model" as users name it: a registry name (with its shipped weights) or a file."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from superres.errors import SuperresError
from superres.models.registry import _REGISTRY, create, get_spec, pretrained_path

__all__ = ["load_for_scale", "has_parameters"]


def has_parameters(name: str) -> bool:
    """Whether the registered model ``name`` has learnable parameters (bicubic has none).

    Counted on PyTorch's meta device and cached (``model_summary``): building EDSR for real
    only to learn that it has parameters would cost seconds and hundreds of MB."""
    from superres.models.summary import model_summary

    spec = get_spec(name)
    return model_summary(name, spec.scales[0] if spec.is_generator else None).parameters > 0


def load_for_scale(model: str, scale: int, map_location: str = "cpu") -> nn.Module:
    """The model for ``scale``: a parameter-free registry model is built, a learned one gets its
    shipped weights, and a path is loaded (its scale must be ``scale``)."""
    from superres.models import load  # the dispatching loader (ours and foreign formats)

    if model in _REGISTRY:
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
