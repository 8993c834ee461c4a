"""UNetSR: an encoder-decoder U-Net at LR resolution followed by a pixel-shuffle upsampler.

Not a paper's network but the U-Net of Ronneberger, Fischer and Brox, "U-Net: Convolutional
Networks for Biomedical Image Segmentation", MICCAI 2015, adapted to super-resolution, the
way many restoration networks use it (e.g. DRUNet, Zhang et al. TPAMI 2021, for
denoising). The design, and why:

- Head: a 3x3 conv to ``features`` (F) channels at LR resolution.
- Encoder: ``levels`` (2) stages, each a 3x3 stride-2 convolution that doubles the channels
  and a 3x3 convolution. Strided convolutions instead of max-pooling: the network learns
  its own downsampling and keeps everything a convolution (cheap on CPU, ONNX-friendly).
  Each level has 4x fewer pixels, so doubling its channels keeps a convolution's cost
  per LR pixel the same, while its 3x3 kernels span twice the distance: the receptive
  field grows quickly for little compute, which long edges, text and repeated texture
  need.
- Bottleneck: one 3x3 convolution at 1 / 2^levels resolution.
- Decoder: per level a 2x2 stride-2 transposed convolution that halves the channels
  (no overlap between output pixels, so no checkerboard from the upsampling itself),
  concatenated with the encoder map of the same size (the skip connection that carries
  the fine detail the encoder gave up) and fused by a 3x3 convolution.
- Upsampler: at LR resolution, a 3x3 conv to C * s^2 channels and a pixel shuffle
  (ESPCN's sub-pixel convolution, Shi et al. CVPR 2016): all convolutions run on LR
  pixels, none on HR pixels.
- Output: the prediction is added to the nearest-neighbour upscale of the input (the
  "anchor" of ABPN, Du et al. CVPRW 2021), so the network learns a residual.
- LeakyReLU(0.2) everywhere: no dead units in the narrow head and decoder.

Any input size: the input is padded (edge replicated, at the bottom and right) to a
multiple of 2^levels and the output cropped back to scale x the original size.

Budget at F=64, 2 levels: 2.26M parameters at x4, ~340K multiply-adds per LR pixel, i.e.
21.3K per output pixel at x4 (SRResNet: 139K, EDSR-baseline: 124K).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True))


class _Down(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_conv(c_in, c_out, stride=2), _conv(c_out, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Up(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2), nn.LeakyReLU(0.2, inplace=True))
        self.fuse = _conv(2 * c_out, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(x)  # (B, C_out, 2h, 2w)
        return self.fuse(torch.cat([up, skip], dim=1))  # (B, C_out, 2h, 2w)


class UNetSR(nn.Module):
    """A U-Net at LR resolution (strided-conv encoder, transposed-conv decoder) + sub-pixel upsampler."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 64, levels: int = 2):
        super().__init__()
        if levels < 1:
            raise ValueError(f"UNetSR needs at least one encoder level, got levels={levels}")
        self.scale = scale
        self.contract = Contract(channels=channels, size_multiple=2**levels)  # it pads to this itself
        self.levels = levels
        widths = [features * 2**i for i in range(levels + 1)]  # F, 2F, 4F, ...
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.encoder = nn.ModuleList(_Down(widths[i], widths[i + 1]) for i in range(levels))
        self.bottleneck = _conv(widths[-1], widths[-1])
        self.decoder = nn.ModuleList(_Up(widths[i + 1], widths[i]) for i in reversed(range(levels)))
        self.tail = nn.Conv2d(features, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        # The tail starts near zero so that an untrained model is nearest-neighbour upscaling.
        nn.init.normal_(self.tail.weight, std=1e-3)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.levels
        padded = F.pad(x, (0, -width % multiple, 0, -height % multiple), mode="replicate")  # (B, C, H', W')
        h = self.head(padded)  # (B, F, H', W')
        skips = [h]
        for down in self.encoder:
            h = down(h)  # (B, 2F..F*2^L, H'/2..H'/2^L, W'/2..W'/2^L)
            skips.append(h)
        h = self.bottleneck(skips.pop())  # (B, F*2^L, H'/2^L, W'/2^L)
        for up in self.decoder:
            h = up(h, skips.pop())  # (B, F*2^(L-1)..F, H'/2^(L-1)..H', ...)
        residual = self.tail(h)  # (B, C*s*s, H', W')
        anchor = padded.repeat_interleave(self.scale * self.scale, dim=1)  # (B, C*s*s, H', W')
        out = self.shuffle(residual + anchor)  # (B, C, sH', sW')
        return out[..., : self.scale * height, : self.scale * width]  # (B, C, sH, sW)


register(ModelSpec("unet-sr", UNetSR, scales=(2, 3, 4, 8), paper="superres (U-Net, Ronneberger et al. MICCAI 2015, at LR resolution)"))
