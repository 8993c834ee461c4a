"""SRCNN: Dong, Loy, He and Tang, "Image Super-Resolution Using Deep Convolutional Networks",
ECCV 2014 and TPAMI 2016.

Three convolutions on a bicubic-upscaled image: patch extraction (f1 x f1, n1 filters),
non-linear mapping (f2 x f2, n2), reconstruction (f3 x f3, C), ReLU after the first two.
"srcnn" is the TPAMI paper's best trade-off, 9-5-5 with n1=64, n2=32; "srcnn-915" is the
original 9-1-5.

Differences from the paper:

- The paper feeds the network an image already upscaled with bicubic interpolation; ours
  takes the LR image like every other superres model and does the MATLAB bicubic upscale
  itself (its matrix products have no parameters and are not trained).
- The paper uses no padding, so its output is 12 (9-1-5) or 16 (9-5-5) pixels smaller than
  its input and only the centre is scored; ours zero-pads each convolution ("same") so
  that the output is exactly scale x the input.
- The paper works on the Y channel; ours maps RGB to RGB (``channels=3``): 69.3K
  parameters for 9-5-5 instead of 57.3K on Y (``channels=1`` gives the paper's model).
- The paper initialises from N(0, 0.001) and trains with SGD for 10^8 steps; we use He
  initialisation for the ReLU layers (the paper's small Gaussian trains far more slowly
  with Adam), keeping N(0, 0.001) for the linear reconstruction layer.

The weights do not depend on the scale (only the bicubic step does), so weights trained
at one scale can be loaded at another, as the paper's multi-scale experiments did.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.imaging.resize import imresize_torch
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class SRCNN(nn.Module):
    """SRCNN (f1-f2-f3, n1, n2) on the bicubic upscale of its input."""

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        n1: int = 64,
        n2: int = 32,
        f1: int = 9,
        f2: int = 5,
        f3: int = 5,
    ):
        super().__init__()
        for name, f in (("f1", f1), ("f2", f2), ("f3", f3)):
            if f % 2 == 0:
                raise ValueError(f"SRCNN kernel sizes must be odd for 'same' padding, got {name}={f}")
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.extract = nn.Conv2d(channels, n1, f1, padding=f1 // 2)
        self.map = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.reconstruct = nn.Conv2d(n2, channels, f3, padding=f3 // 2)
        self.relu = nn.ReLU(inplace=True)
        for conv in (self.extract, self.map):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.reconstruct.weight, std=0.001)
        nn.init.zeros_(self.reconstruct.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upscaled = imresize_torch(x, self.scale)  # (B, C, sH, sW)
        h = self.relu(self.extract(upscaled))  # (B, n1, sH, sW)
        h = self.relu(self.map(h))  # (B, n2, sH, sW)
        return self.reconstruct(h)  # (B, C, sH, sW)


_PAPER = "Dong et al., ECCV 2014 / TPAMI 2016"
register(
    ModelSpec(
        "srcnn", SRCNN, scales=(2, 3, 4, 8), paper=_PAPER,
        published={2: (36.66, 32.42), 3: (32.75, 29.28), 4: (30.48, 27.49)},
    )
)
register(ModelSpec("srcnn-915", SRCNN, scales=(2, 3, 4, 8), paper=_PAPER, defaults={"f2": 1}))
