"""The second-order degradation model of Real-ESRGAN (Wang et al., ICCVW 2021), on a batch.

Real photos have been blurred, resized, made noisy and compressed, often more than once (a
phone picture re-saved by a messenger, a screenshot of a web JPEG). The model applies two
stages, each (with its own ranges):

1. blur with a random kernel (Gaussian, generalized Gaussian, plateau, iso- or anisotropic,
   or a 2-D sinc; :mod:`.kernels`); the second stage blurs with probability 0.8;
2. a random resize: up, down or keep, by area, bilinear or bicubic interpolation;
3. Gaussian or Poisson noise, in colour or gray;
4. JPEG (first stage only; the second stage's JPEG is part of the final step);

then the final step: a resize to the target LR size and a sinc filter (probability 0.8),
and JPEG, in random order. The defaults are the paper's (its ``train_realesrnet_x4plus``
options). The result is rounded to the 8-bit grid, as a saved image would be.

Random choices are drawn per image (kernels, noise, quality) or per batch (resize factor
and mode, as the paper does, so a batch stays one tensor) from a ``torch.Generator``: the
same seed gives the same LR batch.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from superres.data.degradations.kernels import KERNEL_SHAPES, KERNEL_SIZE, filter_batch, gaussian_blur, random_kernel, sinc_kernel

__all__ = ["DegradationStage", "SecondOrder", "second_order_lr", "jpeg_batch", "jpeg_round_trip", "add_gaussian_noise", "add_poisson_noise", "unsharp_mask"]

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class DegradationStage:
    """The ranges of one stage (defaults: the paper's first stage)."""

    blur_prob: float = 1.0
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    # Probabilities of iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso.
    kernel_probs: tuple[float, float, float, float, float, float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    betag: tuple[float, float] = (0.5, 4.0)
    betap: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    # Probabilities of resizing up, down, or keeping the size.
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # on the 0-255 scale
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)

    def __post_init__(self):
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("blur_sigma", "betag", "betap", "resize_range", "noise_sigma", "poisson_scale", "jpeg_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range [low, high] with 0 <= low <= high, got [{lo}, {hi}]")
        if self.blur_sigma[0] <= 0 or self.resize_range[0] <= 0:
            raise ValueError("blur_sigma and resize_range must be above 0")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {list(self.jpeg_quality)}")
        if len(self.kernel_probs) != len(KERNEL_SHAPES) or min(self.kernel_probs) < 0 or sum(self.kernel_probs) <= 0:
            raise ValueError(f"kernel_probs needs {len(KERNEL_SHAPES)} non-negative weights ({', '.join(KERNEL_SHAPES)})")
        if len(self.resize_probs) != 3 or min(self.resize_probs) < 0 or sum(self.resize_probs) <= 0:
            raise ValueError("resize_probs needs 3 non-negative weights (up, down, keep)")


_SECOND_STAGE = DegradationStage(
    blur_prob=0.8,
    blur_sigma=(0.2, 1.5),
    resize_probs=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_sigma=(1.0, 25.0),
    poisson_scale=(0.05, 2.5),
)


@dataclass(frozen=True)
class SecondOrder:
    """The whole second-order model; ``second.jpeg_quality`` is the final step's JPEG."""

    first: DegradationStage = field(default_factory=DegradationStage)
    second: DegradationStage = field(default_factory=lambda: _SECOND_STAGE)
    final_sinc_prob: float = 0.8
    # The paper trains on an unsharp-masked ground truth (sharper results, a lower PSNR).
    sharpen_target: bool = False

    def __post_init__(self):
        if not 0 <= self.final_sinc_prob <= 1:
            raise ValueError(f"final_sinc_prob must be a probability in [0, 1], got {self.final_sinc_prob}")


def _rand(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64)


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * _rand(n, generator)


def jpeg_batch(images: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Each image of a float [0, 1] (B, C, H, W) batch saved as a JPEG at its own quality and
    read back (Pillow's libjpeg, 4:2:0 chroma as most cameras and web images have it)."""
    out = []
    for image, quality in zip(images, qualities):
        array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        decoded, _ = jpeg_round_trip(array, int(quality))
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(images.device, images.dtype) / 255.0


def jpeg_round_trip(array: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """An (H, W, C) uint8 image (C = 1 or 3) saved as a JPEG at ``quality`` as
    :func:`jpeg_batch` saves it, and read back: (the decoded pixels, the file's bytes)."""
    mode = "L" if array.shape[2] == 1 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(buffer).convert(mode))
    return decoded.reshape(array.shape).copy(), buffer.getvalue()


def add_gaussian_noise(images: torch.Tensor, sigmas: torch.Tensor, gray: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Add N(0, sigma^2) noise (``sigmas`` on the 0-255 scale) to each image; where ``gray``,
    one noise plane shared by all channels (luminance noise), else independent per channel."""
    b, c, h, w = images.shape
    colour = torch.randn(images.shape, generator=generator)
    mono = torch.randn((b, 1, h, w), generator=generator).expand(b, c, h, w)
    noise = torch.where(gray.view(b, 1, 1, 1), mono, colour).to(images)
    return images + noise * (sigmas.view(b, 1, 1, 1).to(images) / 255.0)


def add_poisson_noise(images: torch.Tensor, scales: torch.Tensor, gray: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Add shot noise: each image's photon count is modelled by the number of grey levels it
    uses (rounded up to a power of two), the Poisson deviation from it is scaled by
    ``scales``; where ``gray`` the noise is drawn on Y and shared by the channels."""
    b, c = images.shape[:2]
    quantised = (images.clamp(0, 1) * 255).round()
    # Levels in use per image, from one histogram of the whole batch (image i's values offset by 256 i).
    offsets = torch.arange(b, device=images.device).view(b, 1, 1, 1) * 256
    used = torch.bincount((quantised.long() + offsets).flatten(), minlength=256 * b).view(b, 256) > 0
    counts = used.sum(1).clamp(min=2).double()
    levels = (2 ** torch.ceil(torch.log2(counts))).to(images.dtype).view(b, 1, 1, 1)
    quantised = quantised / 255
    if c == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        y = (quantised * weights).sum(1, keepdim=True)
    else:
        y = quantised
    # One Poisson draw per pixel and channel (colour) or per pixel (gray), never both.
    noise = torch.empty_like(quantised)
    colour, mono = (~gray).nonzero()[:, 0], gray.nonzero()[:, 0]
    if len(colour):
        lam = levels[colour]
        noise[colour] = torch.poisson(quantised[colour] * lam, generator=generator) / lam - quantised[colour]
    if len(mono):
        lam = levels[mono]
        noise[mono] = (torch.poisson(y[mono] * lam, generator=generator) / lam - y[mono]).expand(-1, c, -1, -1)
    return images + noise * scales.view(b, 1, 1, 1).to(images)


def unsharp_mask(images: torch.Tensor, weight: float = 0.5, threshold: float = 10.0) -> torch.Tensor:
    """Sharpen a [0, 1] batch by unsharp masking (a Gaussian of sigma 8 px over 51 px, the
    paper's ground-truth sharpening), applied only where the detail exceeds ``threshold``
    8-bit levels, with a soft mask so that flat areas keep their noise-free look."""
    sigmas = torch.full((images.shape[0],), 8.0, dtype=images.dtype)
    blurred = gaussian_blur(images, sigmas, radius=25)
    residual = images - blurred
    mask = (residual.abs() * 255 > threshold).to(images.dtype)
    soft = gaussian_blur(mask, sigmas, radius=25)
    sharp = (images + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * images


def _stage_kernels(stage: DegradationStage, b: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.stack([
        random_kernel(
            sigma=stage.blur_sigma, shape_probs=stage.kernel_probs, betag=stage.betag, betap=stage.betap,
            sinc_prob=stage.sinc_prob, generator=generator,
        )
        for _ in range(b)
    ])


def _random_mode(generator: torch.Generator | None) -> str:
    return RESIZE_MODES[int(torch.randint(len(RESIZE_MODES), (), generator=generator))]


def _resize(images: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=mode, align_corners=False)


def _noise(images: torch.Tensor, stage: DegradationStage, generator: torch.Generator | None) -> torch.Tensor:
    b = images.shape[0]
    gaussian = _rand(b, generator) < stage.gaussian_noise_prob
    gray = _rand(b, generator) < stage.gray_noise_prob
    sigmas = _uniform(*stage.noise_sigma, b, generator)
    scales = _uniform(*stage.poisson_scale, b, generator)
    out = images.clone()
    g, p = gaussian.nonzero()[:, 0], (~gaussian).nonzero()[:, 0]
    if len(g):
        out[g] = add_gaussian_noise(images[g], sigmas[g], gray[g], generator)
    if len(p):
        out[p] = add_poisson_noise(images[p], scales[p], gray[p], generator)
    return out.clamp(0, 1)


def _jpeg(images: torch.Tensor, quality: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    qualities = torch.randint(quality[0], quality[1] + 1, (images.shape[0],), generator=generator).tolist()
    return jpeg_batch(images.clamp(0, 1), qualities)


def _stage(images: torch.Tensor, stage: DegradationStage, base: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    """Blur, resize (relative to ``base``, the size this stage starts from in the paper) and noise."""
    b = images.shape[0]
    blur = _rand(b, generator) < stage.blur_prob
    kernels = _stage_kernels(stage, b, generator)
    if bool(blur.any()):
        blurred = filter_batch(images, kernels)
        images = torch.where(blur.view(b, 1, 1, 1), blurred, images)
    direction = int(torch.multinomial(torch.tensor(stage.resize_probs, dtype=torch.float64), 1, generator=generator))
    if direction == 0:
        factor = float(_uniform(1.0, stage.resize_range[1], 1, generator))
    elif direction == 1:
        factor = float(_uniform(stage.resize_range[0], 1.0, 1, generator))
    else:
        factor = 1.0
    mode = _random_mode(generator)
    if factor != 1.0:
        images = _resize(images, (int(base[0] * factor), int(base[1] * factor)), mode)
    return _noise(images, stage, generator)


def second_order_lr(hr: torch.Tensor, scale: int, config: SecondOrder, generator: torch.Generator | None = None) -> torch.Tensor:
    """The LR batch (B, C, H/scale, W/scale), float in [0, 1] on the 8-bit grid, made from a float
    [0, 1] HR batch by the second-order model ``config``."""
    b, _, h, w = hr.shape
    target = (h // scale, w // scale)
    out = _stage(hr, config.first, (h, w), generator)
    out = _jpeg(out, config.first.jpeg_quality, generator)
    out = _stage(out, config.second, target, generator)

    # The final step: resize to the target and sinc-filter, and JPEG, in random order.
    sinc = _rand(b, generator) < config.final_sinc_prob
    sizes = (2 * torch.randint(3, 11, (b,), generator=generator) + 1).tolist()
    cutoffs = _uniform(math.pi / 3, math.pi, b, generator).tolist()
    pulse = F.pad(torch.ones(1, 1), (KERNEL_SIZE // 2,) * 4)
    kernels = torch.stack([
        F.pad(sinc_kernel(size, cutoff), ((KERNEL_SIZE - size) // 2,) * 4).float() if use else pulse
        for use, size, cutoff in zip(sinc.tolist(), sizes, cutoffs)
    ])
    mode = _random_mode(generator)
    jpeg_first = bool(_rand(1, generator) < 0.5)
    if jpeg_first:
        out = _jpeg(out, config.second.jpeg_quality, generator)
    out = filter_batch(_resize(out, target, mode), kernels)
    if not jpeg_first:
        out = _jpeg(out, config.second.jpeg_quality, generator)
    return (out.clamp(0, 1) * 255).round() / 255
