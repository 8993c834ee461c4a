"""SRResNet and the SRGAN discriminator: Ledig et al., "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", CVPR 2017.

SRResNet (the generator; SRGAN is SRResNet trained with a perceptual and adversarial loss):
a 9x9 head with PReLU, ``blocks`` (16) residual blocks of conv-BN-PReLU-conv-BN, a 3x3
conv + BN closing a long skip from the head, then upsampling stages of 3x3 conv, pixel
shuffle and PReLU, and a 9x9 output convolution. 1.55M parameters at x4.

The discriminator: eight 3x3 convolutions (64, 64, 128, 128, 256, 256, 512, 512 filters,
stride 2 on every second one) with BN (except the first) and LeakyReLU(0.2), then
Dense(1024), LeakyReLU, Dense(1). It sees fixed-size HR patches (96x96 in the paper).

Differences from the paper:

- The paper shows only x4 (two x2 stages); we build x2 and x8 from one and three x2
  stages, and x3 from a single x3 stage (3x3 conv to 9 * features, pixel shuffle by 3).
- The PReLUs learn one slope per channel (the paper does not say; per-channel is Lasagne's
  and torch7's usual choice and costs 64 parameters a layer).
- The convolutions followed by BN have no bias (BN's shift makes it redundant).
- The discriminator returns logits, not a sigmoid probability: losses use
  ``binary_cross_entropy_with_logits``, which is the numerically stable form.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class _ResidualBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.PReLU(features),
            nn.Conv2d(features, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsampler(scale: int, features: int) -> nn.Sequential:
    """x2 stages for powers of two, one x3 stage for 3: conv to features*r^2, shuffle by r, PReLU."""
    if scale == 3:
        factors = [3]
    elif scale >= 2 and scale & (scale - 1) == 0:
        factors = [2] * (scale.bit_length() - 1)
    else:
        raise ValueError(f"SRResNet upsamples by 2, 3, 4 or 8 (powers of two or 3), not {scale}")
    stages: list[nn.Module] = []
    for r in factors:
        stages += [nn.Conv2d(features, features * r * r, 3, padding=1), nn.PixelShuffle(r), nn.PReLU(features)]
    return nn.Sequential(*stages)


class SRResNet(nn.Module):
    """SRResNet: residual blocks with BN at LR resolution, pixel-shuffle upsampling."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, blocks: int = 16):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.head = nn.Sequential(nn.Conv2d(channels, features, 9, padding=4), nn.PReLU(features))
        self.body = nn.Sequential(*(_ResidualBlock(features) for _ in range(blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features))
        self.upsample = _upsampler(scale, features)
        self.tail = nn.Conv2d(features, channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.head(x)  # (B, F, H, W)
        deep = self.body_tail(self.body(shallow))  # (B, F, H, W)
        upscaled = self.upsample(shallow + deep)  # (B, F, sH, sW)
        return self.tail(upscaled)  # (B, C, sH, sW)


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator: a VGG-like strided conv stack and two dense layers; returns logits."""

    def __init__(self, *, channels: int = 3, features: int = 64, input_size: int = 96):
        super().__init__()
        self.contract = Contract(channels=channels)
        if input_size % 16 != 0:
            raise ValueError(f"the SRGAN discriminator halves its input 4 times: input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        # (out_channels, stride) of the seven conv-BN-LeakyReLU blocks.
        plan = [(1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]
        in_features = features
        for multiple, stride in plan:
            out_features = features * multiple
            layers += [
                nn.Conv2d(in_features, out_features, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_features),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_features = out_features
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features * side * side, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"the SRGAN discriminator takes {self.input_size}x{self.input_size} patches, got "
                f"{x.shape[-2]}x{x.shape[-1]}; crop the patches or build it with input_size={x.shape[-2]}"
            )
        h = self.features(x)  # (B, 8F, S/16, S/16)
        return self.classifier(h)  # (B, 1)


_PAPER = "Ledig et al., CVPR 2017"
register(ModelSpec("srresnet", SRResNet, scales=(2, 3, 4, 8), paper=_PAPER))
register(ModelSpec("srgan-discriminator", SRGANDiscriminator, scales=(), paper=_PAPER, is_generator=False))
