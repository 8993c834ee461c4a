"""Models on images with other channels: grey on RGB models, RGB on luma (Y-only) models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from superres.errors import SuperresError
from superres.evaluate import predict_uint8
from superres.imaging.color import rgb_to_ycbcr
from superres.imaging.resize import imresize
from superres.inference import Upscaler
from superres.inference.upscaler import TorchRunner
from superres.inference.channels import adapt_channels
from superres.models import create


def _photo_like(h: int = 30, w: int = 26) -> np.ndarray:
    """Smooth colour gradients with some texture, uint8 RGB."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(3)
    planes = [np.sin(6 * xx + c) * 0.3 + yy * 0.4 + 0.3 + 0.05 * rng.standard_normal((h, w)) for c in range(3)]
    return (np.clip(np.stack(planes, axis=-1), 0, 1) * 255).round().astype(np.uint8)


def test_a_luma_bicubic_model_upscales_rgb_like_rgb_bicubic():
    # Bicubic is linear and so is YCbCr, so Y by the model plus bicubic chroma is RGB bicubic.
    image = _photo_like().astype(np.float32) / 255
    batch = image.transpose(2, 0, 1)[None]
    luma = adapt_channels(TorchRunner(create("bicubic", scale=3, channels=1), torch.device("cpu")), 1)(batch)
    expected = imresize(image, 3).transpose(2, 0, 1)[None]
    assert luma.shape == (1, 3, 90, 78) and luma.dtype == np.float32
    np.testing.assert_allclose(luma, expected, atol=1e-5)


def test_a_luma_model_sees_y_on_the_scale_it_was_trained_on():
    seen = []

    def run(batch):
        seen.append(batch)
        return np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3)

    image = _photo_like()
    adapt_channels(run, 1)(image.astype(np.float32).transpose(2, 0, 1)[None] / 255)
    assert seen[0].shape == (1, 1, 30, 26)
    np.testing.assert_allclose(seen[0][0, 0], rgb_to_ycbcr(image)[..., 0] / 255, atol=1e-6)
    assert 16 / 255 - 1e-6 <= seen[0].min() and seen[0].max() <= 235 / 255 + 1e-6


def test_the_luma_model_changes_only_y():
    model = create("fsrcnn", scale=2, channels=1)
    image = _photo_like()
    sr = predict_uint8(model, image)
    bicubic = predict_uint8(create("bicubic", scale=2), image)
    assert sr.shape == bicubic.shape == (60, 52, 3)
    chroma_sr, chroma_bicubic = rgb_to_ycbcr(sr)[..., 1:], rgb_to_ycbcr(bicubic)[..., 1:]
    assert np.abs(chroma_sr - chroma_bicubic).mean() < 1.0  # rounding and clipping only
    assert np.abs(rgb_to_ycbcr(sr)[..., 0] - rgb_to_ycbcr(bicubic)[..., 0]).mean() > 1.0  # the untrained model's Y


def test_grey_images_go_straight_into_a_luma_model():
    model = create("fsrcnn", scale=2, channels=1)
    grey = _photo_like()[..., :1]
    with torch.no_grad():
        expected = model(torch.from_numpy(grey.astype(np.float32) / 255).permute(2, 0, 1)[None])[0, 0]
    expected = (expected.clamp(0, 1) * 255).round().byte().numpy()
    np.testing.assert_array_equal(predict_uint8(model, grey)[..., 0], expected)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_tiled_luma_upscaling_matches_the_whole_image(backend):
    model = create("fsrcnn", scale=2, channels=1)
    image = _photo_like(70, 64)
    whole = Upscaler(model, scale=2, name="fsrcnn", tile=0, backend=backend).upscale(image)
    tiled = Upscaler(model, scale=2, name="fsrcnn", tile=32, tile_overlap=16, backend=backend).upscale(image)
    assert whole.shape == (140, 128, 3)
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    if backend == "torch":  # the inference API and the paper protocol give the same pixels
        np.testing.assert_array_equal(whole, predict_uint8(model, image))


def test_a_model_of_another_channel_count_is_a_clear_error():
    run = adapt_channels(lambda batch: batch, 2)
    with pytest.raises(SuperresError, match="takes 2-channel images, not 3-channel"):
        run(np.zeros((1, 3, 4, 4), np.float32))
