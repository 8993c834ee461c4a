"""Making LR from HR on a batch: the bicubic protocol, plus optional degradations.

The default is exactly the paper protocol: ``LR = round(imresize(HR, 1/s))``, computed on the
whole batch at once with the MATLAB-compatible bicubic. Robust models can add degradations,
applied in a declared, fixed order (the order in which a camera pipeline would add them):

1. ``blur``: a Gaussian blur of the HR image before downscaling (a soft lens), with a
   random sigma per image;
2. the bicubic downscale;
3. ``noise``: additive Gaussian noise with a random level per image;
4. ``jpeg``: JPEG compression of the LR image with a random quality per image.

Or, instead of these, Real-ESRGAN's second-order model of real photos
(:mod:`.second_order`). Randomness comes from a ``torch.Generator`` the caller seeds per
batch (reproducible runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from superres.data.degradations.kernels import gaussian_blur
from superres.data.degradations.second_order import SecondOrder, jpeg_batch, second_order_lr, unsharp_mask
from superres.imaging.resize import imresize_torch

__all__ = ["Degradations", "make_lr_batch", "gaussian_blur"]


@dataclass(frozen=True)
class Degradations:
    """Ranges of the optional first-order degradations (``None`` disables one), or the
    second-order model of real photos instead of them. Also the ``data.degradations`` section
    of a training config, checked key by key when the config is read."""

    blur_sigma: tuple[float, float] | None = None  # HR-pixel sigma range
    noise_sigma: tuple[float, float] | None = None  # on the 0-255 scale
    jpeg_quality: tuple[int, int] | None = None  # inclusive range
    second_order: SecondOrder | None = None

    def __post_init__(self):
        first_order = (self.blur_sigma, self.noise_sigma, self.jpeg_quality)
        if self.second_order is not None and any(v is not None for v in first_order):
            raise ValueError("second_order replaces blur_sigma, noise_sigma and jpeg_quality; set one or the other")
        for name, value in zip(("blur_sigma", "noise_sigma", "jpeg_quality"), first_order):
            if value is not None and not 0 <= value[0] <= value[1]:
                raise ValueError(f"{name} must be a range [low, high] with 0 <= low <= high, got {list(value)}")

    @property
    def any(self) -> bool:
        return self.second_order is not None or any(v is not None for v in (self.blur_sigma, self.noise_sigma, self.jpeg_quality))


def make_lr_batch(
    hr: torch.Tensor,
    scale: int,
    degradations: Degradations | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """From a (B, C, H, W) uint8 or uint16 HR batch, float32 ``(lr, hr)`` in [0, 1].

    Without degradations the LR is the paper protocol's: bicubic with antialiasing, rounded
    to the HR's own grid (8-bit, or 16-bit for a uint16 batch, so 16-bit data keeps its
    depth on both sides; the JPEG and second-order degradations are 8-bit by nature).
    H and W must be multiples of ``scale``.
    """
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"HR patch {tuple(hr.shape[-2:])} is not a multiple of scale {scale}")
    if hr.dtype not in (torch.uint8, torch.uint16):
        raise TypeError(f"expected a uint8 or uint16 HR batch, got {hr.dtype}")
    levels = 65535 if hr.dtype == torch.uint16 else 255
    hr_f = hr.float() / levels
    d = degradations or Degradations()
    if d.second_order is not None:
        lr = second_order_lr(hr_f, scale, d.second_order, generator)
        return lr, (unsharp_mask(hr_f) if d.second_order.sharpen_target else hr_f)
    source = hr_f
    b = hr.shape[0]

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    if d.blur_sigma is not None:
        source = gaussian_blur(source, uniform(*d.blur_sigma).to(hr.device))
    lr = imresize_torch(source, 1 / scale, round_levels=levels)
    if d.noise_sigma is not None:
        sigma = uniform(*d.noise_sigma).to(hr.device).view(b, 1, 1, 1) / 255.0
        noise = torch.randn(lr.shape, generator=generator).to(hr.device)
        lr = ((lr + sigma * noise).clamp(0, 1) * levels).round() / levels
    if d.jpeg_quality is not None:
        lo, hi = d.jpeg_quality
        qualities = torch.randint(lo, hi + 1, (b,), generator=generator).tolist()
        lr = jpeg_batch(lr, qualities)
    return lr, hr_f
