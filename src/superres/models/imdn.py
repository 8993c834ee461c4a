"""IMDN: Hui, Gao, Yang and Wang, "Lightweight Image Super-Resolution with Information
Multi-distillation Network", ACM MM 2019.

A 3x3 head, ``blocks`` information multi-distillation blocks, a 1x1 fusion of all block
outputs (LeakyReLU 0.05), a 3x3 conv with a long skip, and a 3x3 conv to C*s^2 channels with
a pixel shuffle. Each block (IMDB) runs four 3x3 convs progressively: after each of the first
three, a quarter of the channels is kept ("distilled") and the rest goes on to the next conv;
the kept parts and the last conv's output are concatenated, reweighted by contrast-aware
channel attention (per-channel standard deviation plus mean, 1x1 down by 16, ReLU, 1x1 up,
sigmoid), fused by a 1x1 conv and added to the block input. The paper's configuration, 6
blocks x 64 features, has 0.694M parameters at x2 and 0.715M at x4.

No differences from the authors' code besides module names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class ContrastChannelAttention(nn.Module):
    """Channel attention driven by each channel's standard deviation plus its mean (CCA)."""

    def __init__(self, features: int, *, reduction: int = 16):
        super().__init__()
        self.down = nn.Conv2d(features, features // reduction, 1)
        self.up = nn.Conv2d(features // reduction, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)  # (B, F, 1, 1)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # population std
        weights = torch.sigmoid(self.up(F.relu(self.down(std + mean))))  # (B, F, 1, 1)
        return x * weights


class IMDB(nn.Module):
    """Information multi-distillation block: keep a quarter of the channels after each conv."""

    def __init__(self, features: int):
        super().__init__()
        self.distilled = features // 4
        self.remaining = features - self.distilled
        self.c1 = nn.Conv2d(features, features, 3, padding=1)
        self.c2 = nn.Conv2d(self.remaining, features, 3, padding=1)
        self.c3 = nn.Conv2d(self.remaining, features, 3, padding=1)
        self.c4 = nn.Conv2d(self.remaining, self.distilled, 3, padding=1)
        self.attention = ContrastChannelAttention(self.distilled * 4)
        self.c5 = nn.Conv2d(self.distilled * 4, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        kept1, rest = torch.split(F.leaky_relu(self.c1(x), 0.05), split, dim=1)  # (B, F/4, H, W), (B, 3F/4, H, W)
        kept2, rest = torch.split(F.leaky_relu(self.c2(rest), 0.05), split, dim=1)
        kept3, rest = torch.split(F.leaky_relu(self.c3(rest), 0.05), split, dim=1)
        kept4 = self.c4(rest)  # (B, F/4, H, W)
        distilled = torch.cat((kept1, kept2, kept3, kept4), dim=1)  # (B, F, H, W)
        return self.c5(self.attention(distilled)) + x


class IMDN(nn.Module):
    """IMDN: distillation blocks, a 1x1 fusion of all their outputs, a long skip, pixel shuffle."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, blocks: int = 6):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.blocks = nn.ModuleList(IMDB(features) for _ in range(blocks))
        self.fuse = nn.Conv2d(features * blocks, features, 1)
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.tail = nn.Conv2d(features, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.head(x)  # (B, F, H, W)
        outputs = []
        h = shallow
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        fused = F.leaky_relu(self.fuse(torch.cat(outputs, dim=1)), 0.05)  # (B, F*blocks, H, W) -> (B, F, H, W)
        deep = self.body_conv(fused) + shallow  # (B, F, H, W)
        return self.shuffle(self.tail(deep))  # (B, C*s*s, H, W) -> (B, C, sH, sW)


register(
    ModelSpec(
        "imdn", IMDN, scales=(2, 3, 4, 8), paper="Hui et al., ACM MM 2019",
        published={2: (38.00, 33.63), 3: (34.36, 30.32), 4: (32.21, 28.58)},
    )
)
