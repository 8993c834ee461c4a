"""Initialisations shared by the classic networks.

Kernels are computed with numpy, so that building a model on the ``meta`` device (as the
model summaries do) never needs tensor values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from superres.imaging.resize import _cubic


INITS = ("bicubic", "paper")  # a classic network starting as bicubic, or from PyTorch's defaults


def check_init(init: str) -> None:
    """Raise ``ValueError`` unless ``init`` is one of :data:`INITS`."""
    if init not in INITS:
        raise ValueError(f"init must be 'bicubic' or 'paper', not {init!r}")


def interpolation_taps(scale: int, size: int, centre: int) -> torch.Tensor:
    """A (scale, size) table: for each output phase p, the bicubic weight of the LR pixel at
    offset ``t - centre`` (t = 0..size-1), renormalised to sum to 1 over the taps that fit.

    Output pixel ``s*i + p`` samples LR position ``i + (p + 0.5) / s - 0.5`` (MATLAB's
    convention); taps outside ``size`` are dropped, hence the renormalisation.
    """
    offsets = np.arange(size) - centre
    table = np.stack([_cubic((p + 0.5) / scale - 0.5 - offsets) for p in range(scale)])
    return torch.from_numpy(table / table.sum(axis=1, keepdims=True))


@torch.no_grad()
def identity_through(conv: nn.Conv2d, channels: int, gain: float = 1.0) -> None:
    """Make output channels ``0..channels-1`` of ``conv`` copy input channels ``0..channels-1``
    (times ``gain``) through the kernel centre, leaving the other outputs as initialised."""
    kh, kw = conv.kernel_size
    conv.weight[:channels].zero_()
    for c in range(channels):
        conv.weight[c, c, kh // 2, kw // 2] = gain
    if conv.bias is not None:
        conv.bias[:channels].zero_()


def transposed_interpolation_kernel(scale: int, size: int, padding: int) -> torch.Tensor:
    """The 1-D kernel of a stride-``scale`` transposed convolution (``size`` taps, ``padding``)
    that performs bicubic interpolation: output ``o = s*i - padding + k`` gets weight
    ``cubic(u - i)`` with ``u = (o + 0.5) / s - 0.5``, renormalised per output phase."""
    k = np.arange(size)
    w = _cubic((k - padding + 0.5) / scale - 0.5)
    phase = np.mod(k - padding, scale)
    for p in range(scale):
        total = w[phase == p].sum()
        if total != 0:
            w[phase == p] /= total
    return torch.from_numpy(w)
