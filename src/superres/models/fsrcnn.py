"""FSRCNN and FSRCNN-s: Dong, Loy and Tang, "Accelerating the Super-Resolution
Convolutional Neural Network", ECCV 2016.

Feature extraction (5x5, d), shrinking (1x1, s), m mapping layers (3x3, s), expanding
(1x1, d), and a 9x9 transposed convolution with stride ``scale``; PReLU after each
convolution. FSRCNN is d=56, s=12, m=4; FSRCNN-s is d=32, s=5, m=1.

The paper works on the Y channel only, which is ``channels=1`` here (12.8K parameters at
x2): colour images then get Y from the network and Cb, Cr from bicubic
(superres.inference.channels). ``channels=3`` maps RGB to RGB with the same widths (24.7K
parameters, the first and last layers three times as wide).

Initialisation (``init="bicubic"``, the default): the first ``channels`` feature maps of
every layer are set to carry the input pixel through unchanged (inputs are in [0, 1], so
the PReLUs pass them), and the transposed convolution maps them to a bicubic interpolation
kernel. The untrained network is therefore bicubic upscaling, and training only has to
learn the correction. The architecture is unchanged; ``init="paper"`` is the paper's
Gaussian initialisation. On this project's CPU budget the paper's initialisation needed
about 1,000 iterations just to climb back to bicubic quality (31.2 dB on Set5 x2 after
1,000 steps, against bicubic's 33.66).
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models._init import check_init, identity_through, transposed_interpolation_kernel
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m) with a transposed-convolution upsampler."""

    # The deconvolution's shape does not depend on the scale, but its weights do: starting
    # x3/x4 from x2 must not copy them (the paper fine-tunes only this layer).
    scale_specific_keys = ("deconv.weight", "deconv.bias")

    def __init__(self, *, scale: int, channels: int = 3, d: int = 56, s: int = 12, m: int = 4, init: str = "bicubic"):
        super().__init__()
        check_init(init)
        self.scale = scale
        self.contract = Contract(channels=channels)
        self.channels = channels
        layers: list[nn.Module] = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d)]
        layers += [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # padding 4 and output_padding scale-1 make the output exactly scale x the input.
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4, output_padding=scale - 1)
        self._init_weights(init)

    @torch.no_grad()
    def _init_weights(self, init: str) -> None:
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
                if init == "bicubic":
                    identity_through(module, self.channels)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)
        if init == "bicubic":
            # Only the identity maps reach the output at first; the other features' weights
            # start at zero (as a residual branch would) and grow from the first step.
            k = transposed_interpolation_kernel(self.scale, 9, 4).float()
            self.deconv.weight.zero_()
            for c in range(self.channels):
                self.deconv.weight[c, c] = torch.outer(k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)  # (B, d, H, W)
        return self.deconv(features)  # (B, C, sH, sW)


register(
    ModelSpec(
        "fsrcnn", FSRCNN, scales=(2, 3, 4, 8), paper="Dong et al., ECCV 2016",
        published={2: (37.00, 32.63), 3: (33.16, 29.43), 4: (30.71, 27.59)},
    )
)
register(ModelSpec("fsrcnn-s", FSRCNN, scales=(2, 3, 4, 8), paper="Dong et al., ECCV 2016", defaults={"d": 32, "s": 5, "m": 1}))
