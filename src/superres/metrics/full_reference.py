"""PSNR and SSIM as the SR paper protocol computes them: pure functions, numpy and torch.

Both take images on the 0-255 scale (uint8, or float already rounded to integers as the
protocol does) of shape HxW or HxWx3 (numpy) or (B, C, H, W) (torch), shave ``shave``
pixels from every border, and score either Y (MATLAB BT.601, kept in float) or all
channels. A single-channel image is scored as it is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from superres.imaging.color import rgb_to_y, rgb_to_y_torch

__all__ = ["psnr", "ssim", "psnr_torch", "ssim_torch", "prepare", "SSIM_WINDOW"]

SSIM_WINDOW = 11  # the side of SSIM's Gaussian window: an image scored needs at least this much

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def prepare(image: np.ndarray, *, shave: int, y_only: bool) -> np.ndarray:
    """Float64 HxW or HxWxC array of what is scored: Y (or all channels), borders shaved."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and y_only:
        scored = rgb_to_y(image)
    else:
        scored = image.astype(np.float64)
        if image.dtype == np.uint16:
            scored = scored * (255.0 / 65535.0)
    if shave:
        scored = scored[shave:-shave, shave:-shave]
    return scored


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def psnr(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, y_only: bool = True) -> float:
    """PSNR = 10 log10(255^2 / MSE) over the shaved Y (or all) channels; inf for identical images."""
    _check_pair(sr, hr)
    diff = prepare(sr, shave=shave, y_only=y_only) - prepare(hr, shave=shave, y_only=y_only)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(image: np.ndarray, g: np.ndarray) -> np.ndarray:
    # The 2-D Gaussian is separable: 'valid' correlation along rows, then columns.
    rows = np.lib.stride_tricks.sliding_window_view(image, g.size, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, g.size, axis=1) @ g


def _ssim_channel(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> float:
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / (
        (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    )
    return float(ssim_map.mean())


def ssim(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, y_only: bool = True) -> float:
    """SSIM as in Wang et al.'s MATLAB reference: Gaussian window 11, sigma 1.5, K1 = 0.01,
    K2 = 0.03, L = 255, 'valid' filtering, mean of the map (averaged over channels if RGB)."""
    _check_pair(sr, hr)
    a = prepare(sr, shave=shave, y_only=y_only)
    b = prepare(hr, shave=shave, y_only=y_only)
    g = _gaussian_window()
    if a.ndim == 2:
        return _ssim_channel(a, b, g)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], g) for c in range(a.shape[2])]))


def _prepare_torch(images: torch.Tensor, *, shave: int, y_only: bool) -> torch.Tensor:
    x = images.to(torch.float64)
    if y_only and x.shape[1] == 3:
        x = rgb_to_y_torch(x / 255.0)
    if shave:
        x = x[..., shave:-shave, shave:-shave]
    return x


def psnr_torch(sr: torch.Tensor, hr: torch.Tensor, *, shave: int = 0, y_only: bool = True) -> torch.Tensor:
    """Per-image PSNR of (B, C, H, W) batches on the 0-255 scale; returns a (B,) tensor."""
    diff = _prepare_torch(sr, shave=shave, y_only=y_only) - _prepare_torch(hr, shave=shave, y_only=y_only)
    mse = diff.pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(255.0**2 / mse)


def ssim_torch(sr: torch.Tensor, hr: torch.Tensor, *, shave: int = 0, y_only: bool = True) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) batches on the 0-255 scale; same definition as :func:`ssim`."""
    a = _prepare_torch(sr, shave=shave, y_only=y_only)
    b = _prepare_torch(hr, shave=shave, y_only=y_only)
    channels = a.shape[1]
    g = torch.from_numpy(_gaussian_window()).to(a.device)
    window = torch.outer(g, g).expand(channels, 1, -1, -1).contiguous()

    def blur(x):
        return F.conv2d(x, window, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return ssim_map.flatten(1).mean(dim=1)
