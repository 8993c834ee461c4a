"""Colour conversions of the SR paper protocol: MATLAB's ``rgb2ycbcr`` (BT.601) and modcrop."""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y", "rgb_to_y_torch", "rgb_to_ycbcr_torch", "ycbcr_to_rgb_torch", "chroma_to_rgb_torch",
    "rgb_from_luma_torch", "modcrop", "YCBCR_FROM_RGB", "YCBCR_OFFSET", "CHROMA_FROM_RGB", "RGB_PER_LUMA",
]

# MATLAB rgb2ycbcr for R, G, B in [0, 1], giving Y in [16, 235] and Cb, Cr in [16, 240].
_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0])
_INVERSE = np.linalg.inv(_YCBCR)


def _as_unit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    return image.astype(np.float64)


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (uint8, uint16, or float in [0, 1]) to float64 YCbCr on MATLAB's 0-255 scale.

    Y = 16 + 65.481 R + 128.553 G + 24.966 B, with R, G, B in [0, 1]. Not re-quantised.
    """
    return _as_unit(image) @ _YCBCR.T + _OFFSET


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """The Y channel (float64, 16-235 scale) of an HxWx3 RGB image; see :func:`rgb_to_ycbcr`."""
    return _as_unit(image) @ _YCBCR[0] + 16.0


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: float YCbCr (0-255 scale) to float RGB in [0, 1] (unclipped)."""
    return (np.asarray(ycbcr, dtype=np.float64) - _OFFSET) @ _INVERSE.T


def rgb_to_y_torch(images: torch.Tensor) -> torch.Tensor:
    """Y (16-235 scale) of (B, 3, H, W) RGB tensors in [0, 1]; returns (B, 1, H, W)."""
    return _per_pixel_affine(images, _YCBCR[:1], _OFFSET[:1])


def rgb_to_ycbcr_torch(images: torch.Tensor) -> torch.Tensor:
    """:func:`rgb_to_ycbcr` for (B, 3, H, W) RGB tensors in [0, 1], in their own dtype and device."""
    return _per_pixel_affine(images, _YCBCR, _OFFSET)


def ycbcr_to_rgb_torch(images: torch.Tensor) -> torch.Tensor:
    """:func:`ycbcr_to_rgb` for (B, 3, H, W) YCbCr tensors (0-255 scale): RGB in [0, 1], unclipped."""
    return _per_pixel_affine(images, _INVERSE, -_INVERSE @ _OFFSET)


# RGB = _INVERSE @ (YCbCr - _OFFSET) splits into a luma part, _INVERSE[:, 0] * (Y - 16), and a
# chroma part, _INVERSE[:, 1:] @ (CbCr - 128) = _CHROMA @ RGB: the colour an image keeps when
# its Y is replaced.
_CHROMA = _INVERSE[:, 1:] @ _YCBCR[1:]
_LUMA = _INVERSE[:, 0]

# The same matrices by public names, for code that writes these conversions as layers of
# another runtime (superres.inference.export_ncnn): YCbCr = YCBCR_FROM_RGB @ RGB + YCBCR_OFFSET
# (0-255 scale), and RGB = CHROMA_FROM_RGB @ RGB - 16 * RGB_PER_LUMA + Y * RGB_PER_LUMA.
YCBCR_FROM_RGB = _YCBCR
YCBCR_OFFSET = _OFFSET
CHROMA_FROM_RGB = _CHROMA
RGB_PER_LUMA = _LUMA


def chroma_to_rgb_torch(images: torch.Tensor) -> torch.Tensor:
    """The chroma part of (B, 3, H, W) RGB tensors in [0, 1], as RGB less the luma part, minus
    16's luma part: :func:`rgb_from_luma_torch` adds a Y back. A linear resize that keeps
    constants (weights summing to 1, as bicubic's do) commutes with it, so a luma model's
    result is ``rgb_from_luma_torch(Y', resize(chroma_to_rgb_torch(rgb)))``: the same colour as
    resizing Cb and Cr and converting back, with the resize on three input-sized planes and
    one product per output pixel instead of a 3x3 matrix."""
    return _per_pixel_affine(images, _CHROMA, -16.0 * _LUMA)


def rgb_from_luma_torch(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (unclipped) from a (B, 1, H, W) Y on the 0-255 scale and a (B, 3, H, W)
    :func:`chroma_to_rgb_torch` part. The result is laid out channels-last in memory (a
    (B, H, W, 3) array seen as (B, 3, H, W)): the join writes each pixel's three channels
    together, so the image needs no separate interleave on its way to 8-bit pixels. Under
    autograd (which refuses ``out=``) the same sum is returned in the default layout, so an
    explanation differentiates the very join that upscaling runs."""
    luma = torch.tensor(_LUMA, dtype=chroma.dtype, device=chroma.device).view(1, 3, 1, 1)
    if torch.is_grad_enabled() and (y.requires_grad or chroma.requires_grad):
        return torch.addcmul(chroma, luma, y)
    out = torch.empty_like(chroma, memory_format=torch.channels_last)
    return torch.addcmul(chroma, luma, y, out=out)


def _per_pixel_affine(images: torch.Tensor, matrix: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """``matrix @ pixel + offset`` for every pixel's channel vector (``matrix`` is K x 3), as an
    einsum: on a CPU it is about 20x faster than the same product as a 1x1 convolution, and
    several times faster than numpy's matmul over an (H, W, 3) float64 array."""
    weight = torch.tensor(matrix, dtype=images.dtype, device=images.device)
    bias = torch.tensor(offset, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return torch.einsum("ij,bjhw->bihw", weight, images) + bias


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so that height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]
