"""EDSR and EDSR-baseline: Lim, Son, Kim, Nah and Lee, "Enhanced Deep Residual Networks for
Single Image Super-Resolution", CVPRW 2017.

A 3x3 head, ``blocks`` residual blocks (conv-ReLU-conv, no batch norm, the residual scaled by
``res_scale``), a 3x3 conv and a long skip, then a pixel-shuffle upsampler (x2 stages for
powers of two, one x3 stage for 3) and a 3x3 tail. The DIV2K RGB mean is subtracted from the
input and added back to the output. EDSR-baseline is 16 blocks x 64 features without residual
scaling (1.37M parameters at x2); EDSR is 32 x 256 with ``res_scale=0.1`` (40.7M at x2, 43.1M
at x4).

Differences from the authors' code: the mean shift lives in buffers (never trained) rather
than frozen parameters, so that every parameter of the model is trainable. The authors
trained on pixel values in [0, 255] (``rgb_range=255``); ours defaults to [0, 1], and
``rgb_range`` exists so that their released checkpoints, whose biases assume [0, 255], run
unchanged: the input is multiplied by ``rgb_range`` and the output divided by it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register

# Mean of the 800 DIV2K training images, per RGB channel (the value of the authors' code).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Module):
    """Subtract (``sign=-1``) or add (``sign=+1``) a per-channel mean, as a fixed 1x1 convolution.

    An affine 1x1 map (weight and bias in buffers) rather than a plain subtraction, because
    the authors' checkpoints store it as a convolution, and RCAN's releases trained it (its
    code froze the module, not its parameters), so a loaded weight need not be the identity.
    """

    def __init__(self, mean: tuple[float, ...], *, rgb_range: float, sign: int):
        super().__init__()
        channels = len(mean)
        self.register_buffer("weight", torch.eye(channels).view(channels, channels, 1, 1))
        self.register_buffer("bias", sign * rgb_range * torch.tensor(mean, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


class PixelShuffleUpsampler(nn.Sequential):
    """Features to ``scale`` x resolution: (3x3 conv to 4F, shuffle 2) per factor 2, or one x3 stage."""

    def __init__(self, *, scale: int, features: int):
        if scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        elif scale == 3:
            factors = [3]
        else:
            raise ValueError(f"pixel-shuffle upsampler supports scales 2^n and 3, not {scale}")
        layers: list[nn.Module] = []
        for factor in factors:
            layers += [nn.Conv2d(features, features * factor * factor, 3, padding=1), nn.PixelShuffle(factor)]
        super().__init__(*layers)


def channel_mean(channels: int) -> tuple[float, ...]:
    """DIV2K's RGB mean for 3 channels; its grey average for any other channel count."""
    if channels == 3:
        return DIV2K_RGB_MEAN
    return (sum(DIV2K_RGB_MEAN) / 3,) * channels


class ResBlock(nn.Module):
    """conv-ReLU-conv with a scaled residual: x + res_scale * f(x)."""

    def __init__(self, features: int, *, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class EDSR(nn.Module):
    """EDSR: residual blocks without batch norm, a long skip and a pixel-shuffle upsampler."""

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        features: int = 64,
        blocks: int = 16,
        res_scale: float = 1.0,
        rgb_range: float = 1.0,
    ):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.rgb_range = rgb_range
        mean = channel_mean(channels)
        self.sub_mean = MeanShift(mean, rgb_range=rgb_range, sign=-1)
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(features, res_scale=res_scale) for _ in range(blocks)))
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.upsample = PixelShuffleUpsampler(scale=scale, features=features)
        self.tail = nn.Conv2d(features, channels, 3, padding=1)
        self.add_mean = MeanShift(mean, rgb_range=rgb_range, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x * self.rgb_range)  # (B, C, H, W), zero-mean
        shallow = self.head(x)  # (B, F, H, W)
        deep = self.body_conv(self.body(shallow)) + shallow  # (B, F, H, W)
        out = self.tail(self.upsample(deep))  # (B, C, sH, sW)
        return self.add_mean(out) / self.rgb_range


SCALES = (2, 3, 4, 8)
PAPER = "Lim et al., CVPRW 2017"

register(
    ModelSpec(
        "edsr-baseline", EDSR, scales=SCALES, paper=PAPER,
        published={2: (37.99, 33.57), 3: (34.37, 30.28), 4: (32.09, 28.58)},
    )
)
register(
    ModelSpec(
        "edsr", EDSR, scales=SCALES, paper=PAPER,
        published={2: (38.11, 33.92), 3: (34.65, 30.52), 4: (32.46, 28.80)},
        defaults={"features": 256, "blocks": 32, "res_scale": 0.1},
    )
)
