"""ESPCN: Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016.

Three convolutions in LR space (5x5 64, 3x3 32, 3x3 C*s^2) with tanh, then a pixel shuffle
(the sub-pixel convolution). The paper works on Y only; ours maps RGB to RGB.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.registry import ModelSpec, register


class ESPCN(nn.Module):
    """ESPCN with (5x5, f1), (3x3, f2) and a sub-pixel output layer."""

    def __init__(self, *, scale: int, channels: int = 3, f1: int = 64, f2: int = 32):
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(f2, channels * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sub_pixels = self.body(x)  # (B, C*s*s, H, W)
        return self.shuffle(sub_pixels)  # (B, C, sH, sW)


register(ModelSpec("espcn", ESPCN, scales=(2, 3, 4, 8), paper="Shi et al., CVPR 2016"))
