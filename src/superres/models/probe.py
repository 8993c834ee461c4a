"""Running a model once with a hook on its layers: how the tile memory estimate, the
receptive radius and the multiply-add count learn what a model does without being told."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

__all__ = ["leaves", "probe"]

#: A forward hook: (module, its inputs, its output).
Hook = Callable[[nn.Module, tuple, object], None]


def leaves(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that hold no others: the layers that run."""
    return [m for m in model.modules() if next(m.children(), None) is None]


def probe(model: nn.Module, x: torch.Tensor, hook: Hook, modules: Iterable[nn.Module] | None = None) -> None:
    """``model(x)`` without gradients, ``hook`` called after each of ``modules`` (default: its
    :func:`leaves`) runs; the hooks are removed afterwards, whatever happens. A model that
    cannot run ``x`` raises, as it would."""
    handles = [m.register_forward_hook(hook) for m in (leaves(model) if modules is None else modules)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
