"""The fused whole-image path (integer pixels to integer pixels in torch) against the float
planes path that every image took before it and that tiles and output sizes still take.

Which agreement, and why:

- colour (RGB models, luma models with their YCbCr split and bicubic chroma, grey images on
  RGB models, 8 and 16 bits): **pixel-exact**. Both paths run the same float32 operations
  in the same order (one adapted model, :func:`~superres.inference.channels.adapt_channels_tensor`,
  serves both) and round the same way (``from_float_tensor`` is ``from_float``'s arithmetic);
- alpha: **within 1 LSB**. The planes path upscales alpha with the float64 numpy bicubic,
  the fused path with the float32 torch one (same weights); a value that lands within
  float32's rounding of a half step can round the other way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from superres.imaging.io import ImageData, to_float
from superres.inference import Upscaler, load
from superres.inference.upscaler import _planes_to_pixels
from superres.models import create


def _photo(h: int, w: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    planes = [np.sin(7 * xx + 2 * c) * 0.3 + yy * 0.4 + 0.3 + 0.08 * rng.standard_normal((h, w)) for c in range(channels)]
    peak = np.iinfo(dtype).max
    return (np.clip(np.stack(planes, axis=-1), 0, 1) * peak).round().astype(dtype)


def _planes_path(up: Upscaler, pixels: np.ndarray, alpha: np.ndarray | None = None):
    """What upscaling did before the fused path: float planes through the tiling engine."""
    colour, out_alpha = up.upscale_planes(to_float(pixels).transpose(2, 0, 1), None if alpha is None else to_float(alpha))
    result = _planes_to_pixels(colour, pixels.dtype)
    return result, None if out_alpha is None else _planes_to_pixels(out_alpha[None], pixels.dtype)[..., 0]


@pytest.fixture(scope="module")
def rgb_model():
    torch.manual_seed(0)
    return Upscaler(create("swiftrep", scale=2, blocks=2, features=16), scale=2, name="swiftrep", device="cpu")


@pytest.fixture(scope="module")
def luma_model():
    torch.manual_seed(0)
    return Upscaler(create("espcn", scale=3, channels=1), scale=3, name="espcn", device="cpu")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("which", ["rgb_model", "luma_model"])
def test_colour_is_pixel_exact(request, which, channels, dtype):
    up = request.getfixturevalue(which)
    pixels = _photo(23, 31, channels, dtype)
    fused = up.upscale(pixels if channels == 3 else pixels[..., 0])
    expected, _ = _planes_path(up, pixels)
    assert fused.dtype == dtype
    np.testing.assert_array_equal(fused if channels == 3 else fused[..., None], expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_alpha_is_within_one_step_and_the_colour_exact(rgb_model, dtype):
    pixels = _photo(20, 27, 3, dtype)
    alpha = _photo(20, 27, 1, dtype, seed=1)[..., 0]
    alpha[:, :8] = 0  # a fully transparent band: its colour is filled before upscaling
    got = rgb_model.upscale_image_data(ImageData(pixels=pixels, alpha=alpha))
    colour, out_alpha = _planes_path(rgb_model, pixels, alpha)
    np.testing.assert_array_equal(got.pixels, colour)
    difference = np.abs(got.alpha.astype(np.int64) - out_alpha.astype(np.int64))
    assert difference.max() <= 1
    assert (got.alpha[:, :10] == 0).all()  # transparent stays exactly transparent


def test_tiled_images_still_take_the_planes_path_exactly(rgb_model):
    up = Upscaler(rgb_model.runner.model, scale=2, name="swiftrep", device="cpu", tile=16, tile_overlap=8)
    pixels = _photo(40, 37)
    np.testing.assert_array_equal(up.upscale(pixels), _planes_path(up, pixels)[0])


def test_a_batch_of_equal_sizes_matches_one_by_one(luma_model):
    images = [_photo(17, 21, seed=s) for s in range(3)] + [_photo(12, 9, seed=9)]
    alphas = [None, _photo(17, 21, 1, seed=5)[..., 0], None, None]
    batched = luma_model.upscale_batch(images, alphas)
    for image, alpha, (pixels, out_alpha) in zip(images, alphas, batched):
        single = luma_model.upscale_image_data(ImageData(pixels=image, alpha=alpha))
        np.testing.assert_array_equal(pixels, single.pixels)
        if alpha is None:
            assert out_alpha is None
        else:
            np.testing.assert_array_equal(out_alpha, single.alpha)


@pytest.mark.parametrize("name", ["espcn", "swiftrep"])
def test_shipped_x4_models_are_pixel_exact(name):
    up = load(name, 4, device="cpu")
    pixels = _photo(30, 41, seed=4)
    np.testing.assert_array_equal(up.upscale(pixels), _planes_path(up, pixels)[0])
