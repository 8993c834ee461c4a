"""RRDBNet, the ESRGAN generator: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks", ECCVW 2018; scales 1 and 2 as in Real-ESRGAN (Wang et al., ICCVW 2021).

A 3x3 head, ``blocks`` residual-in-residual dense blocks (RRDB: three residual dense blocks
of five 3x3 convs with ``growth`` new channels each, LeakyReLU 0.2, every residual scaled by
0.2), a 3x3 conv and a long skip, then upsampling stages of (nearest x2, 3x3 conv, LeakyReLU),
a 3x3 conv, LeakyReLU and a 3x3 conv to RGB. No batch norm, no mean shift. The paper's
configuration, 23 blocks x 64 features, growth 32, has 16.7M parameters at x4.

Scales: the design upsamples by powers of two, so x4 is two stages and x8 three. x2 and x1
follow Real-ESRGAN: the input is pixel-unshuffled by 2 (or 4) into 12 (or 48) channels and
then upscaled x4, so that the expensive trunk runs at a quarter (or a sixteenth) of the
pixels. The pixel-unshuffle needs sides divisible by its factor; other sizes are padded by
reflection (as Real-ESRGAN's inference does) and the output is cropped back to scale x input.
x3 (one nearest x3 stage in the original code) is not offered: no official x3 model exists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register

# How much the input is pixel-unshuffled, and how many x2 stages follow, per scale.
_UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}
_UP_STAGES = {1: 2, 2: 2, 4: 2, 8: 3}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the fifth maps back to ``features``; residual x0.2."""

    def __init__(self, features: int, growth: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.conv1(x), 0.2)  # (B, G, H, W)
        x2 = F.leaky_relu(self.conv2(torch.cat((x, x1), 1)), 0.2)
        x3 = F.leaky_relu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2)
        x4 = F.leaky_relu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))  # (B, F, H, W)
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks in sequence, with an outer residual scaled by 0.2."""

    def __init__(self, features: int, growth: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """The ESRGAN generator, with Real-ESRGAN's pixel-unshuffle input for x1 and x2."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, blocks: int = 23, growth: int = 32):
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet supports scales {tuple(_UNSHUFFLE)}, not {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        # Takes ``channels``, whatever its first conv sees after the pixel-unshuffle.
        self.contract = Contract(channels=channels, size_multiple=self.unshuffle)
        self.conv_first = nn.Conv2d(channels * self.unshuffle**2, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up = nn.ModuleList(nn.Conv2d(features, features, 3, padding=1) for _ in range(_UP_STAGES[scale]))
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, channels, 3, padding=1)
        self._init_weights()

    def _init_weights(self) -> None:
        # ESRGAN's initialisation: Kaiming scaled by 0.1 inside the dense blocks keeps the
        # 3 x blocks stacked residual branches near identity at the start, without which
        # a deep RRDB trunk trains poorly.
        for module in self.body.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
                module.weight.data.mul_(0.1)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:
            x = _pad_to_multiple(x, self.unshuffle)
            x = F.pixel_unshuffle(x, self.unshuffle)  # (B, C*u*u, H/u, W/u)
        feat = self.conv_first(x)  # (B, F, h, w)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self.conv_up:
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)  # (B, F, 2h, 2w)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))  # (B, C, sH', sW')
        return out[..., : height * self.scale, : width * self.scale]  # (B, C, sH, sW)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    # Reflection needs more pixels than it pads; tiny inputs fall back to replication.
    mode = "reflect" if min(x.shape[-2:]) > max(pad_h, pad_w) else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


register(ModelSpec("rrdbnet", RRDBNet, scales=(1, 2, 4, 8), paper="Wang et al., ECCVW 2018 (ESRGAN); Real-ESRGAN x1/x2"))
