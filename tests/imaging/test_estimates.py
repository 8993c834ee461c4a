"""Noise, spectral falloff and JPEG blockiness from pixels alone, on images whose history is known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.imaging.estimates import blockiness, highpass_sigma, noise_sigma, spectral_falloff


def _photo_like(size: int = 192, seed: int = 0) -> np.ndarray:
    """A random image with a natural image's 1/f amplitude spectrum (RGB, uint8): detail at
    every scale, as a clean photo has, and no noise of its own."""
    rng = np.random.default_rng(seed)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
    f[0, 0] = 1
    planes = [np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / f)) for _ in range(3)]
    planes = [(p - p.mean()) / p.std() * 40 + 128 for p in planes]
    return np.clip(np.stack(planes, axis=2), 0, 255).round().astype(np.uint8)


def _ramp(size: int = 160) -> np.ndarray:
    """A smooth two-way ramp: planes and ramps are what Immerkaer's mask cancels."""
    y, x = np.mgrid[0:size, 0:size]
    return np.repeat((40 + 0.5 * x + 0.3 * y)[..., None], 3, axis=2)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 8.0, 12.0])
def test_noise_sigma_reads_gaussian_noise_of_known_sigma(sigma):
    rng = np.random.default_rng(int(sigma))
    noisy = np.clip(_ramp() + rng.normal(0, sigma, (160, 160, 3)), 0, 255).round().astype(np.uint8)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.05)
    assert highpass_sigma(noisy) == pytest.approx(sigma, rel=0.05)  # white noise: the two agree


def test_a_clean_photo_reads_little_noise_and_its_detail_as_texture(set5):
    from superres.imaging.io import read_image
    from superres.imaging.resize import imresize

    assert noise_sigma(_ramp().round().astype(np.uint8)) < 1.0  # only the rounding to whole grey levels
    lr = imresize(read_image(set5 / "bird.png").pixels, 1 / 4)  # the paper protocol's clean LR
    assert noise_sigma(lr) < 3.0
    # Detail fills the high-pass band, but not its quietest blocks, as noise would.
    assert highpass_sigma(lr) > 1.1 * noise_sigma(lr)
    noisy = np.clip(lr + np.random.default_rng(0).normal(0, 8, lr.shape), 0, 255).round().astype(np.uint8)
    assert noise_sigma(noisy) == pytest.approx(8, rel=0.15)
    assert highpass_sigma(noisy) == pytest.approx(noise_sigma(noisy), rel=0.06)


def test_blur_takes_power_from_the_top_of_the_spectrum():
    sharp = _photo_like()
    # Blurred: down by 3 and back up by bicubic, as a resized-again picture is.
    small = Image.fromarray(sharp).resize((64, 64), Image.BICUBIC)
    blurred = np.asarray(small.resize((192, 192), Image.BICUBIC))
    falloff_sharp, _ = spectral_falloff(sharp)
    falloff_blurred, _ = spectral_falloff(blurred)
    assert falloff_sharp > -10 and falloff_blurred < -25
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert abs(spectral_falloff(noise)[0]) < 1  # white noise: the same power in every band


def test_jpeg_blocks_are_seen_in_the_decoded_pixels():
    clean = _photo_like(seed=1)
    buffer = io.BytesIO()
    Image.fromarray(clean).save(buffer, format="JPEG", quality=30)
    decoded = np.asarray(Image.open(buffer))
    assert blockiness(clean) < 1.1
    assert blockiness(decoded) > 1.2
    assert blockiness(np.zeros((8, 8, 3), np.uint8)) == 1.0  # too small to have a grid
