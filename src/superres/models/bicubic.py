"""Bicubic upscaling (MATLAB ``imresize``) as a parameter-free model: the baseline of every table."""

from __future__ import annotations

import torch
from torch import nn

from superres.imaging.resize import imresize_torch
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class Bicubic(nn.Module):
    """Upscale by ``scale`` with MATLAB-compatible bicubic interpolation; no parameters."""

    def __init__(self, *, scale: int, channels: int = 3):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize_torch(x, self.scale)  # (B, C, sH, sW)


register(ModelSpec("bicubic", Bicubic, scales=(2, 3, 4, 8), paper="Keys 1981; MATLAB imresize"))
