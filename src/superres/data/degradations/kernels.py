"""Random blur kernels of the real-world degradation model (Real-ESRGAN, Wang et al. 2021).

Six shapes, each a function of the offset ``x`` from the kernel's centre and a covariance
``S = R diag(sx^2, sy^2) R^T`` (isotropic: ``sx = sy``, no rotation):

- Gaussian: ``exp(-0.5 q)`` with ``q = x^T S^-1 x``;
- generalized Gaussian: ``exp(-0.5 q^beta)``: flatter tops (beta > 1) or heavier tails (< 1);
- plateau: ``1 / (1 + q^beta)``: a flat top with slowly falling tails;

and a 2-D sinc (an ideal circular low-pass, ``wc J1(wc r) / (2 pi r)``) that causes the
ringing and overshoot that sharpening and resampling leave in real photos. Every kernel is
normalised to sum 1 and zero-padded to ``KERNEL_SIZE`` so a batch is filtered by one grouped
convolution. The randomness comes from a ``torch.Generator``: the same seed gives the same
kernels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["KERNEL_SHAPES", "KERNEL_SIZE", "gaussian_blur", "shaped_kernel", "sinc_kernel", "random_kernel", "filter_batch"]

KERNEL_SIZE = 21
KERNEL_SHAPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _grid(size: int) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([xx, yy], dim=-1)  # (size, size, 2)


def _pad(kernel: torch.Tensor) -> torch.Tensor:
    p = (KERNEL_SIZE - kernel.shape[0]) // 2
    return F.pad(kernel, (p, p, p, p))


def shaped_kernel(size: int, shape: str, sigma_x: float, sigma_y: float, angle: float, beta: float = 1.0) -> torch.Tensor:
    """One (size, size) float64 kernel of ``shape`` (see the module docstring), summing to 1."""
    if shape not in KERNEL_SHAPES:
        raise ValueError(f"unknown kernel shape {shape!r}; expected one of {', '.join(KERNEL_SHAPES)}")
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rotation.T
    x = _grid(size)
    q = torch.einsum("hwi,ij,hwj->hw", x, torch.linalg.inv(cov), x)
    if shape.startswith("generalized"):
        kernel = torch.exp(-0.5 * q.pow(beta))
    elif shape.startswith("plateau"):
        kernel = 1.0 / (1.0 + q.pow(beta))
    else:
        kernel = torch.exp(-0.5 * q)
    return kernel / kernel.sum()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """A (size, size) circular low-pass kernel with cutoff ``cutoff`` (radians per pixel)."""
    r = _grid(size).norm(dim=-1)
    safe = torch.where(r == 0, torch.ones_like(r), r)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), kernel)
    return kernel / kernel.sum()


def _beta(lo: float, hi: float, generator: torch.Generator | None) -> float:
    # Half the draws below 1 and half above, as the paper samples the shape parameter.
    if _uniform(0, 1, generator) < 0.5 and lo < 1:
        return _uniform(lo, 1.0, generator)
    return _uniform(1.0, hi, generator)


def random_kernel(
    *,
    sigma: tuple[float, float],
    shape_probs: tuple[float, ...],
    betag: tuple[float, float],
    betap: tuple[float, float],
    sinc_prob: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One random (KERNEL_SIZE, KERNEL_SIZE) float32 blur kernel: a random odd size from 7 to
    21, a sinc with probability ``sinc_prob``, else a shape drawn by ``shape_probs`` (in the
    order of ``KERNEL_SHAPES``) with sigmas in ``sigma`` and shape parameters in ``betag``
    (generalized) or ``betap`` (plateau)."""
    size = 2 * int(torch.randint(3, 11, (), generator=generator)) + 1
    if _uniform(0, 1, generator) < sinc_prob:
        # Small kernels cannot hold a low cutoff's wide lobes.
        cutoff = _uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi, generator)
        return _pad(sinc_kernel(size, cutoff)).float()
    index = int(torch.multinomial(torch.tensor(shape_probs, dtype=torch.float64), 1, generator=generator))
    shape = KERNEL_SHAPES[index]
    if shape.endswith("iso") and not shape.endswith("aniso"):
        sigma_x = sigma_y = _uniform(*sigma, generator)
        angle = 0.0
    else:
        sigma_x, sigma_y = _uniform(*sigma, generator), _uniform(*sigma, generator)
        angle = _uniform(-math.pi, math.pi, generator)
    beta = 1.0
    if shape.startswith("generalized"):
        beta = _beta(*betag, generator)
    elif shape.startswith("plateau"):
        beta = _beta(*betap, generator)
    return _pad(shaped_kernel(size, shape, sigma_x, sigma_y, angle, beta)).float()


def filter_batch(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter each (C, H, W) image of a batch with its own (K, K) point-symmetric kernel,
    reflect-padded (edge-replicated where an image is too small to reflect).

    Computed by FFT: a 21x21 depthwise convolution is 441 multiply-adds per pixel, which on a
    CPU took a third of a training step; the padded image's transform times the kernel's is
    the same linear filter on the part that the circular wrap does not reach."""
    b, c, h, w = images.shape
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if min(h, w) > pad else "replicate"
    padded = F.pad(images, (pad, pad, pad, pad), mode=mode).float()  # (B, C, H + 2p, W + 2p)
    # Zero-padded further to sizes with only small prime factors: a 192 px patch padded by 10
    # is 212 = 4 x 53 wide, where the FFT took twice as long as at 216. The extra zeros lie
    # past the outputs kept, so the circular wrap still never reaches them.
    size = tuple(_fast_fft_size(n) for n in padded.shape[-2:])
    spectrum = torch.fft.rfft2(padded, s=size) * torch.fft.rfft2(kernels.float().flip(-2, -1), s=size)[:, None]
    out = torch.fft.irfft2(spectrum, s=size)[..., 2 * pad : 2 * pad + h, 2 * pad : 2 * pad + w]
    return out.to(images.dtype)


def _fast_fft_size(n: int) -> int:
    """The smallest size >= ``n`` whose only prime factors are 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Blur each (C, H, W) image of a batch with its own Gaussian sigma (separable, reflect-
    padded), over ``radius`` pixels each side (default: 3 sigma)."""
    if radius is None:
        radius = int(math.ceil(3 * float(sigmas.max())))
    if radius == 0:
        return images
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernels = torch.exp(-(x[None] ** 2) / (2 * sigmas[:, None].to(images.dtype) ** 2))  # (B, K)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    b, c, h, w = images.shape
    mode = "reflect" if min(images.shape[-2:]) > radius else "replicate"  # reflect needs a wider image
    padded = F.pad(images, (radius, radius, radius, radius), mode=mode)
    flat = padded.reshape(1, b * c, h + 2 * radius, w + 2 * radius)
    k = kernels.repeat_interleave(c, dim=0)  # (B*C, K)
    flat = F.conv2d(flat, k[:, None, :, None], groups=b * c)  # vertical
    flat = F.conv2d(flat, k[:, None, None, :], groups=b * c)  # horizontal
    return flat.reshape(b, c, h, w)
