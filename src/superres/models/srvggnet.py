"""SRVGGNetCompact: the compact generator of Real-ESRGAN (Wang, Xie, Dong and Shan,
"Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021;
the network itself came with the repository's v0.2.x releases, not the paper).

A plain VGG-style stack at LR resolution: a 3x3 conv, ``convs`` further 3x3 convs, each
followed by a per-channel PReLU, a 3x3 conv to C*s^2 channels and a pixel shuffle; the
nearest-neighbour upscaled input is added, so the network learns a residual over it. Real-
ESRGAN ships it with 64 features and 16 convs (``realesr-animevideov3``, 0.62M parameters at
x4) or 32 convs (``realesr-general-x4v3``, 1.21M).

Differences from the authors' code: only the PReLU activation (every released model uses it;
the ReLU and LeakyReLU options have no parameters and would be indistinguishable in a
checkpoint). The layer list keeps the authors' flat layout (conv, PReLU, ..., conv), so their
checkpoints load with their own key names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact net: conv/PReLU pairs in LR space, pixel shuffle, nearest anchor."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, convs: int = 16):
        super().__init__()
        self.scale = scale
        self.contract = Contract(channels=channels, receptive_radius=convs + 2)  # convs + 2 3x3 convolutions in LR space
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, channels * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shuffle(self.body(x))  # (B, C*s*s, H, W) -> (B, C, sH, sW)
        anchor = F.interpolate(x, scale_factor=self.scale, mode="nearest")  # (B, C, sH, sW)
        return residual + anchor


register(ModelSpec("srvggnet-compact", SRVGGNetCompact, scales=(2, 3, 4, 8), paper="Wang et al., ICCVW 2021 (Real-ESRGAN v0.2)"))
# Real-ESRGAN x4plus's look at a compact network's cost: distilled from its outputs on our
# degraded training photos (configs/compact_real_x4.yaml; superres.training.distill), starting
# from Real-ESRGAN's anime-video weights (superres.models.reference).
register(ModelSpec(
    "compact-real", SRVGGNetCompact, scales=(4,), trained_for="real",
    paper="superres: SRVGGNetCompact distilled from Real-ESRGAN x4plus (Wang et al., ICCVW 2021)",
))
