"""GAN discriminators of ESRGAN and Real-ESRGAN (the SRGAN one lives in ``srresnet.py``).

"vgg-discriminator": Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks", ECCV Workshops 2018 (the discriminator of its official code, a
deeper SRGAN discriminator). Stages of a 3x3 convolution and a 4x4 stride-2 convolution,
64, 128, 256, 512, 512 filters, BN (except the first layer) and LeakyReLU(0.2), until
the map is 4x4; then Dense(100), LeakyReLU, Dense(1). 14.5M parameters at 128x128.
ESRGAN's relativistic average loss is a matter of the loss, not of this network.

"unet-discriminator": Wang et al., "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021. A U-Net: a 3x3 conv,
three 4x4 stride-2 convolutions (2F, 4F, 8F), three stages of bilinear x2 upsampling and a
3x3 conv, each added to the encoder map of the same size, two more 3x3 convolutions and a
3x3 conv to one channel: a logit for every pixel, which gives the generator per-pixel
feedback. Spectral normalisation on every convolution but the first and the last,
LeakyReLU(0.2) and no BN. 4.4M parameters.

Differences from the official code:

- Both return logits (the losses apply the sigmoid).
- The VGG discriminator takes any ``input_size`` of 4 * 2^k (the official one 128 or 256);
  the stages continue until the map is 4x4, with at most 8 * features filters.
- Spectral normalisation uses ``torch.nn.utils.parametrizations.spectral_norm``, so the
  state-dict keys are ``convN.parametrizations.weight.original`` / ``.0._u`` / ``.0._v``
  where Real-ESRGAN's ``.pth`` files have ``convN.weight_orig`` / ``weight_u`` / ``weight_v``:
  loading those files goes through a key conversion, like every foreign checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class VGGDiscriminator(nn.Module):
    """ESRGAN's VGG-style discriminator for fixed-size patches; returns (B, 1) logits."""

    def __init__(self, *, channels: int = 3, features: int = 64, input_size: int = 128):
        super().__init__()
        self.contract = Contract(channels=channels)
        stages = input_size.bit_length() - 3  # input_size = 4 * 2**stages
        if input_size < 8 or input_size != 4 << stages:
            raise ValueError(f"the VGG discriminator halves its input down to 4x4: input_size must be 4 * 2^k (e.g. 128), got {input_size}")
        self.input_size = input_size
        layers: list[nn.Module] = []
        in_features = channels
        for i in range(stages):
            out_features = features * min(2**i, 8)
            if i == 0:
                layers += [nn.Conv2d(in_features, out_features, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            else:
                layers += [
                    nn.Conv2d(in_features, out_features, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_features),
                    nn.LeakyReLU(0.2, inplace=True),
                ]
            layers += [
                nn.Conv2d(out_features, out_features, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_features),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            in_features = out_features
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features * 4 * 4, 100),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(100, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits and the output of every conv block (for feature matching)."""
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"the VGG discriminator takes {self.input_size}x{self.input_size} patches, got "
                f"{x.shape[-2]}x{x.shape[-1]}; crop the patches or build it with input_size={x.shape[-2]}"
            )
        activations = []
        h = x
        for layer in self.features:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                activations.append(h)
        return self.classifier(h), activations  # (B, 1); the last activation is (B, F', 4, 4)


class UNetDiscriminator(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm; returns (B, 1, H, W) logits."""

    def __init__(self, *, channels: int = 3, features: int = 64, skip_connection: bool = True):
        super().__init__()
        self.contract = Contract(channels=channels)
        self.skip_connection = skip_connection
        f = features
        self.conv0 = nn.Conv2d(channels, f, 3, padding=1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False))
            for c_in, c_out in ((f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f))
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))
            for c_in, c_out in ((8 * f, 4 * f), (4 * f, 2 * f), (2 * f, f))
        )
        self.refine = nn.ModuleList(spectral_norm(nn.Conv2d(f, f, 3, padding=1, bias=False)) for _ in range(2))
        self.out = nn.Conv2d(f, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits and the activations of every stage (for feature matching)."""
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(
                f"the U-Net discriminator halves its input 3 times: height and width must be multiples of 8, "
                f"got {x.shape[-2]}x{x.shape[-1]}; crop the patches to a multiple of 8"
            )
        h = F.leaky_relu(self.conv0(x), 0.2)  # (B, F, H, W)
        skips = [h]
        activations = [h]
        for conv in self.down:
            h = F.leaky_relu(conv(h), 0.2)  # (B, 2F..8F, H/2..H/8, W/2..W/8)
            skips.append(h)
            activations.append(h)
        skips.pop()  # the bottleneck itself is not a skip
        for conv in self.up:
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = F.leaky_relu(conv(h), 0.2)  # (B, 4F..F, H/4..H, W/4..W)
            skip = skips.pop()
            if self.skip_connection:
                h = h + skip
            activations.append(h)
        for conv in self.refine:
            h = F.leaky_relu(conv(h), 0.2)  # (B, F, H, W)
        activations.append(h)
        return self.out(h), activations  # (B, 1, H, W)


register(ModelSpec("vgg-discriminator", VGGDiscriminator, scales=(), paper="Wang et al., ECCVW 2018 (ESRGAN)", is_generator=False))
register(ModelSpec("unet-discriminator", UNetDiscriminator, scales=(), paper="Wang et al., ICCVW 2021 (Real-ESRGAN)", is_generator=False))
