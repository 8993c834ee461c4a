"""What an image's pixels say about its history: how noisy, how blurred, how blocky.

Pure functions of pixels, no model, milliseconds for a photo. They feed the choice of model
for a photo (:mod:`superres.inference.autopick`): camera noise and JPEG blocks call for a
model that removes them, a blurred or resized-again picture for one that sharpens it, and
a clean render for the clean flagship.
"""

from __future__ import annotations

import numpy as np

__all__ = ["noise_sigma", "highpass_sigma", "spectral_falloff", "blockiness"]

_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # the median of |N(0, 1)|

#: Largest side analysed: a larger image is centre-cropped to it, which keeps an estimate to
#: milliseconds on a 24 MP photo, and noise and blur are properties of the whole frame.
MAX_SIDE = 1024


def _planes(image: np.ndarray) -> np.ndarray:
    """(C, H, W) float64 on the 0-255 scale from HxW or HxWxC uint8/uint16/float [0, 1]
    pixels, centre-cropped to :data:`MAX_SIDE`; alpha (a 2nd or 4th channel) dropped."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    a = a[..., :1] if a.shape[2] in (1, 2) else a[..., :3]
    h, w = a.shape[:2]
    top, left = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    a = a[top : top + MAX_SIDE, left : left + MAX_SIDE]
    scale = 255.0 / 65535.0 if a.dtype == np.uint16 else 1.0 if a.dtype == np.uint8 else 255.0
    return a.transpose(2, 0, 1).astype(np.float64) * scale


def _immerkaer(p: np.ndarray) -> np.ndarray:
    """``p`` (H, W) correlated with Immerkaer's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]
    (the difference of two Laplacians: zero on planes and ramps, a gain of 6 on white
    noise), on the interior (H-2, W-2)."""
    rows = p[:-2] - 2 * p[1:-1] + p[2:]  # the vertical second difference, then the horizontal one
    return rows[:, :-2] - 2 * rows[:, 1:-1] + rows[:, 2:]


def _box(p: np.ndarray, size: int, axis: int) -> np.ndarray:
    """A ``size``-tap moving average of ``p`` along ``axis``, edges repeated."""
    half = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half + 1, size - half - 1)
    c = np.cumsum(np.pad(p, pad, mode="edge"), axis=axis)
    n = p.shape[axis]
    hi = np.take(c, np.arange(size, size + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) / size


def highpass_sigma(image: np.ndarray) -> float:
    """The noise sigma (0-255, per colour channel) that the whole image's high-pass band would
    mean if all of it were white noise: Immerkaer's estimator (CVIU 1996) made robust, the
    median absolute response of each channel to Immerkaer's mask over 0.6745 * 6 (Donoho's
    MAD), averaged over the channels. Edges and texture count here; compare
    :func:`noise_sigma`, which looks only at the flattest blocks."""
    planes = _planes(image)
    if min(planes.shape[1:]) < 3:
        return 0.0
    return float(np.mean([np.median(np.abs(_immerkaer(p))) * _MAD_TO_SIGMA / 6.0 for p in planes]))


#: Blocks of the high-pass band whose quietest tenth :func:`noise_sigma` reads.
_BLOCK = 8
_QUIET = 10  # percentile
# The quietest tenth of 8x8 blocks of white noise reads this fraction of its sigma (the
# sampling spread of a 64-sample RMS, of samples that the mask correlates with their
# neighbours); dividing by it makes the estimate unbiased for noise. Measured on images of
# Gaussian noise of sigma 2-12 (tests/imaging/test_estimates.py holds it within 5%).
_QUIET_BIAS = 0.7825


def noise_sigma(image: np.ndarray) -> float:
    """The standard deviation (0-255 scale, per colour channel) of white noise in ``image``.

    Each channel is filtered by Immerkaer's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] (zero
    on planes and ramps, gain 6 on white noise), the RMS response of every 8x8 block is
    taken, and the quietest tenth of the blocks gives the estimate (divided by 6, and by
    0.7825, what the quietest tenth of pure noise reads), averaged over the channels. Noise
    is everywhere, image detail is not: in the flattest tenth of a photo the response is
    noise, where a median over all pixels (:func:`highpass_sigma`) also counts texture. A
    picture with no flat part (foliage, fur) still reads high; the ratio of the two
    estimates tells texture (well above 1) from noise (about 1). An image under 10x10 gives 0.
    """
    planes = _planes(image)
    b = _BLOCK
    if min(planes.shape[1:]) < b + 2:
        return 0.0
    sigmas = []
    for p in planes:
        f = _immerkaer(p)
        h, w = (f.shape[0] // b) * b, (f.shape[1] // b) * b
        blocks = f[:h, :w].reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
        rms = np.sqrt((blocks**2).mean(axis=1)) / 6.0
        sigmas.append(np.percentile(rms, _QUIET) / _QUIET_BIAS)
    return float(np.mean(sigmas))


def spectral_falloff(image: np.ndarray, window: int = 64) -> tuple[float, float]:
    """How fast the image's power spectrum falls toward the Nyquist frequency, in dB:
    (top band against the mid band, top band against the high band), where the bands are
    radial frequencies of 0.4-0.5 (top), 0.3-0.4 (high) and 0.1-0.2 (mid) cycles per pixel.

    The spectrum is Welch's: the mean of the power of Hann-windowed ``window``-pixel tiles
    (half overlapping) of the channels' mean. Natural images fall by a roughly fixed slope,
    so the ratios depend more on the picture's history than on its content: a clean
    downscale keeps power up to the top band (about -6 to -23 dB below the mid band here),
    a blurred or resized-again picture loses it there first, and white noise raises it. An
    image smaller than one tile is measured on one tile of its own size."""
    y = _planes(image).mean(axis=0)
    n = min(window, *y.shape)
    if n < 8:
        return 0.0, 0.0
    taper = np.outer(np.hanning(n), np.hanning(n))
    power = np.zeros((n, n))
    count = 0
    for top in range(0, y.shape[0] - n + 1, n // 2):
        for left in range(0, y.shape[1] - n + 1, n // 2):
            tile = y[top : top + n, left : left + n]
            power += np.abs(np.fft.fft2((tile - tile.mean()) * taper)) ** 2
            count += 1
    f = np.fft.fftfreq(n)
    radius = np.hypot(f[:, None], f[None, :])

    def band(lo: float, hi: float) -> float:
        return float(power[(radius >= lo) & (radius < hi)].mean()) / count + 1e-12  # floor: a flat image

    top = band(0.4, 0.5)
    return float(10 * np.log10(top / band(0.1, 0.2))), float(10 * np.log10(top / band(0.3, 0.4)))


def blockiness(image: np.ndarray) -> float:
    """JPEG's 8x8 block grid in the pixels: the mean absolute difference between neighbours
    across the grid's lines (columns and rows 8k-1 | 8k) over the median of the other seven
    phases. About 1 for a picture never saved as a JPEG (or saved at high quality); 1.2 and
    above where the blocks of a JPEG of everyday quality show, also after it was decoded
    and saved as PNG. An image under 16 pixels a side gives 1."""
    y = _planes(image).mean(axis=0)
    if min(y.shape) < 16:
        return 1.0
    phases = []
    for a in (y, y.T):
        d = np.abs(np.diff(a, axis=1))
        width = d.shape[1] - d.shape[1] % 8
        phases.append(d[:, :width].reshape(d.shape[0], -1, 8).mean(axis=(0, 1)))  # phase 7: across a grid line
    mean = np.mean(phases, axis=0)
    rest = float(np.median(mean[:7]))
    return float(mean[7] / rest) if rest > 0 else 1.0
