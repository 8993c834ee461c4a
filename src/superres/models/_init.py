"""Initialisations shared by the classic networks."""

from __future__ import annotations


import torch
from torch import nn

from superres.imaging.resize import _cubic


def interpolation_taps(scale: int, size: int, centre: int) -> torch.Tensor:
    """A (scale, size) table: for each output phase p, the bicubic weight of the LR pixel at
    offset ``t - centre`` (t = 0..size-1), renormalised to sum to 1 over the taps that fit.

    Output pixel ``s*i + p`` samples LR position ``i + (p + 0.5) / s - 0.5`` (MATLAB's
    convention); taps outside ``size`` are dropped, hence the renormalisation.
    """
    table = torch.zeros(scale, size, dtype=torch.float64)
    for p in range(scale):
        u = (p + 0.5) / scale - 0.5
        w = torch.tensor([float(_cubic(u - (t - centre))) for t in range(size)], dtype=torch.float64)
        table[p] = w / w.sum()
    return table


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
    k = torch.arange(size, dtype=torch.float64)
    t = (k - padding + 0.5) / scale - 0.5  # u - i for tap k
    w = torch.tensor([float(_cubic(float(v))) for v in t], dtype=torch.float64)
    phase = torch.remainder(k - padding, scale).long()
    for p in range(scale):
        total = w[phase == p].sum()
        if total != 0:
            w[phase == p] /= total
    return w


