"""VDSR: Kim, Lee and Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016.

``depth`` (20) 3x3 convolutions of ``features`` (64) filters with ReLU between them, all at
HR resolution on a bicubic-upscaled image, and a global residual: the network predicts
the difference between the HR image and the bicubic upscale. 665K parameters on Y
(668K on RGB).

Differences from the paper:

- The paper feeds the network an image already upscaled with bicubic interpolation; ours
  takes the LR image like every other superres model and does the MATLAB bicubic upscale
  itself (parameter-free matrix products, not trained).
- The paper works on the Y channel; ours maps RGB to RGB (``channels=3``; ``channels=1``
  gives the paper's model).
- The paper trains one network for scales 2, 3 and 4 together with adjustable gradient
  clipping and a high learning rate; the architecture does not depend on the scale (only
  the bicubic step does), so superres weights at one scale load at another, but the
  training recipe is not part of the model.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.imaging.resize import imresize_torch
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class VDSR(nn.Module):
    """VDSR: a plain stack of 3x3 convolutions predicting the residual over bicubic."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, depth: int = 20):
        super().__init__()
        if depth < 2:
            raise ValueError(f"VDSR needs depth >= 2 (an input and an output layer), got {depth}")
        self.scale = scale
        self.contract = Contract(channels=channels)
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        # He initialisation, as the paper does: with 20 layers the default (uniform, a=sqrt(5))
        # shrinks the signal layer after layer and training stalls at the start.
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upscaled = imresize_torch(x, self.scale)  # (B, C, sH, sW)
        residual = self.body(upscaled)  # (B, C, sH, sW)
        return upscaled + residual  # (B, C, sH, sW)


register(
    ModelSpec(
        "vdsr", VDSR, scales=(2, 3, 4, 8), paper="Kim et al., CVPR 2016",
        published={2: (37.53, 33.03), 3: (33.66, 29.77), 4: (31.35, 28.01)},
    )
)
