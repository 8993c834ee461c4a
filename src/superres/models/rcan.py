"""RCAN: Zhang, Li, Li, Wang, Zhong and Fu, "Image Super-Resolution Using Very Deep Residual
Channel Attention Networks", ECCV 2018.

Residual in residual: ``groups`` residual groups, each ``blocks`` residual channel-attention
blocks (RCAB: conv-ReLU-conv, then channel attention: global average pool, 1x1 down by
``reduction``, ReLU, 1x1 up, sigmoid, rescale) and a 3x3 conv with a short skip; a 3x3 conv
and a long skip around all groups; EDSR's pixel-shuffle upsampler and mean shift. The paper's
configuration is 10 groups x 20 blocks x 64 features, reduction 16: 15.6M parameters at x4.

Differences from the authors' code: as in :mod:`superres.models.edsr`, the mean shift lives
in buffers and ``rgb_range`` (default 1) lets their [0, 255] checkpoints run unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.edsr import MeanShift, PixelShuffleUpsampler, channel_mean
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class ChannelAttention(nn.Module):
    """Squeeze (global average) and excite (two 1x1 convs, sigmoid) to rescale each channel."""

    def __init__(self, features: int, *, reduction: int):
        super().__init__()
        self.down = nn.Conv2d(features, features // reduction, 1)
        self.up = nn.Conv2d(features // reduction, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)  # (B, F, 1, 1)
        weights = torch.sigmoid(self.up(F.relu(self.down(pooled))))  # (B, F, 1, 1)
        return x * weights


class RCAB(nn.Module):
    """Residual channel-attention block: x + CA(conv(ReLU(conv(x))))."""

    def __init__(self, features: int, *, reduction: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.attention = ChannelAttention(features, reduction=reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.conv2(F.relu(self.conv1(x))))


class ResidualGroup(nn.Module):
    """``blocks`` RCABs and a 3x3 conv, with a short skip connection."""

    def __init__(self, features: int, *, blocks: int, reduction: int):
        super().__init__()
        self.blocks = nn.Sequential(*(RCAB(features, reduction=reduction) for _ in range(blocks)))
        self.conv = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.blocks(x))


class RCAN(nn.Module):
    """RCAN: residual groups of channel-attention blocks, a long skip, a pixel-shuffle upsampler."""

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        features: int = 64,
        groups: int = 10,
        blocks: int = 20,
        reduction: int = 16,
        rgb_range: float = 1.0,
    ):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.rgb_range = rgb_range
        mean = channel_mean(channels)
        self.sub_mean = MeanShift(mean, rgb_range=rgb_range, sign=-1)
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.groups = nn.Sequential(*(ResidualGroup(features, blocks=blocks, reduction=reduction) for _ in range(groups)))
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.upsample = PixelShuffleUpsampler(scale=scale, features=features)
        self.tail = nn.Conv2d(features, channels, 3, padding=1)
        self.add_mean = MeanShift(mean, rgb_range=rgb_range, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x * self.rgb_range)  # (B, C, H, W), zero-mean
        shallow = self.head(x)  # (B, F, H, W)
        deep = self.body_conv(self.groups(shallow)) + shallow  # (B, F, H, W)
        out = self.tail(self.upsample(deep))  # (B, C, sH, sW)
        return self.add_mean(out) / self.rgb_range


register(
    ModelSpec(
        "rcan", RCAN, scales=(2, 3, 4, 8), paper="Zhang et al., ECCV 2018",
        published={2: (38.27, 34.12), 3: (34.74, 30.65), 4: (32.63, 28.87)},
    )
)
