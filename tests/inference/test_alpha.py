"""Transparency: colour bleeding fills only invisible pixels, and an upscaled RGBA image keeps
a transparent background and a clean, fringe-free edge."""

from __future__ import annotations

import numpy as np
import pytest

from superres.imaging import ImageData
from superres.imaging.resize import imresize
from superres.inference import load
from superres.inference.alpha import bleed_colour
from superres.inference.upscaler import Upscaler
from superres.models import create


def _red_disc(size: int = 48, radius: float = 10.0) -> ImageData:
    """An anti-aliased opaque red disc on a fully transparent black background, far enough
    from the image border that a model's zero padding does not reach the disc."""
    y, x = np.mgrid[0:size, 0:size]
    coverage = np.clip(radius - np.hypot(y - (size - 1) / 2, x - (size - 1) / 2), 0, 1)
    alpha = np.rint(coverage * 255).astype(np.uint8)
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[..., 0] = np.where(alpha > 0, 255, 0)
    return ImageData(pixels=pixels, alpha=alpha)


def test_bleed_fills_only_transparent_pixels_from_their_neighbours():
    colour = np.zeros((16, 20, 3), dtype=np.float32)
    colour[:, :5] = (1, 0, 0)  # red on the left, blue on the right, black hidden between
    colour[:, 15:] = (0, 0, 1)
    alpha = np.zeros((16, 20), dtype=np.float32)
    alpha[:, :5] = 1
    alpha[:, 15:] = 0.5
    filled = bleed_colour(colour, alpha)
    np.testing.assert_array_equal(filled[alpha > 0], colour[alpha > 0])
    assert np.all(filled[:, 5, 0] > 0.9) and np.all(filled[:, 14, 2] > 0.9)  # beside each: its colour
    assert np.all(filled.max(axis=2) > 0.9)  # no black left anywhere


def test_bleed_without_holes_or_without_anything_visible_is_a_copy():
    colour = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    for alpha in (np.ones((5, 6)), np.zeros((5, 6))):
        np.testing.assert_array_equal(bleed_colour(colour, alpha), colour)


@pytest.mark.parametrize("model", ["bicubic", "swiftrep"])
def test_transparent_background_stays_transparent_and_edges_stay_red(model):
    image = _red_disc()
    upscaler = load("bicubic", 4) if model == "bicubic" else Upscaler(create("swiftrep", scale=4), scale=4, name="swiftrep")
    out = upscaler.upscale_image_data(image)
    assert out.pixels.shape == (192, 192, 3) and out.alpha.shape == (192, 192)
    # The background far from the disc is exactly transparent, the centre exactly opaque.
    y, x = np.mgrid[0:192, 0:192]
    distance = np.hypot(y - 95.5, x - 95.5)
    assert np.all(out.alpha[distance > 48] == 0)
    assert np.all(out.alpha[distance < 30] == 255)
    # Every pixel that shows at all has the colour the model gives a plain red image (exactly
    # red for bicubic; an untrained SwiftRep adds its own sub-pixel pattern): no dark fringe
    # where alpha falls off.
    visible = out.alpha > 0
    assert (visible & (out.alpha < 255)).sum() > 100
    plain = np.zeros_like(image.pixels)
    plain[..., 0] = 255
    red = upscaler.upscale_image_data(ImageData(pixels=plain)).pixels
    if model == "bicubic":
        assert np.all(red[..., 0] == 255) and np.all(red[..., 1:] == 0)
    difference = np.abs(out.pixels.astype(int) - red)[visible]
    assert difference.max() <= 1


def test_without_bleeding_the_same_edge_would_darken():
    # What the test above guards against: upscaling the raw colour mixes the hidden black in.
    image = _red_disc()
    naive = imresize(image.pixels, 4)
    alpha = imresize(image.alpha, 4)
    semi = (alpha > 0) & (alpha < 255)
    assert naive[semi][:, 0].min() < 200
