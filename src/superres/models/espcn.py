"""ESPCN: Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016.

Three convolutions in LR space (5x5 64, 3x3 32, 3x3 C*s^2) with tanh, then a pixel shuffle
(the sub-pixel convolution). The paper works on Y only, which is ``channels=1`` here: colour
images then get Y from the network and Cb, Cr from bicubic (superres.inference.channels).
``channels=3`` maps RGB to RGB with the same widths.

Initialisation (``init="bicubic"``, the default): the first ``channels`` maps of the two
tanh layers carry the input scaled by 0.05 (where tanh is linear to 0.2%), and the output
layer turns them into a bicubic interpolation over its 3x3 window (taps beyond it dropped
and the rest renormalised), so the untrained network already upscales like bicubic and
training learns the correction; the rest of the output layer starts at zero.
``init="paper"`` keeps PyTorch's default initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models._init import check_init, identity_through, interpolation_taps
from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register

_GAIN = 0.05  # small enough that tanh(0.05 x) = 0.05 x within 0.2% for x in [0, 1]


class ESPCN(nn.Module):
    """ESPCN with (5x5, f1), (3x3, f2) and a sub-pixel output layer."""

    def __init__(self, *, scale: int, channels: int = 3, f1: int = 64, f2: int = 32, init: str = "bicubic"):
        super().__init__()
        check_init(init)
        self.scale = scale
        self.contract = Contract(channels=channels, receptive_radius=4)  # 5x5, 3x3, 3x3: 2 + 1 + 1
        self.channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(f2, channels * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)
        if init == "bicubic":
            self._init_bicubic()

    @torch.no_grad()
    def _init_bicubic(self) -> None:
        first, second, out = self.body[0], self.body[2], self.body[4]
        identity_through(first, self.channels, _GAIN)
        identity_through(second, self.channels, 1.0)
        taps = interpolation_taps(self.scale, 3, centre=1).float()  # (s, 3)
        out.weight.zero_()
        out.bias.zero_()
        s = self.scale
        for c in range(self.channels):
            for py in range(s):
                for px in range(s):
                    # PixelShuffle reads channel c*s*s + py*s + px as sub-pixel (py, px) of c.
                    out.weight[c * s * s + py * s + px, c] = torch.outer(taps[py], taps[px]) / _GAIN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sub_pixels = self.body(x)  # (B, C*s*s, H, W)
        return self.shuffle(sub_pixels)  # (B, C, sH, sW)


register(
    ModelSpec(
        "espcn", ESPCN, scales=(2, 3, 4, 8), paper="Shi et al., CVPR 2016",
        published={2: (36.83, 32.40), 3: (32.55, None), 4: (30.52, 27.42)},
    )
)
