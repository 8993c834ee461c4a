"""The real-world degradation model: kernels by their formulas, the filter against a direct
convolution, the second-order pipeline's output and determinism, and the scoring presets."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from superres.data.degradations import (
    KERNEL_SHAPES,
    DegradationStage,
    Degradations,
    SecondOrder,
    check_preset,
    degrade,
    filter_batch,
    make_lr_batch,
    random_kernel,
    second_order_lr,
    shaped_kernel,
    sinc_kernel,
    unsharp_mask,
)
from superres.data.degradations.second_order import add_poisson_noise
from superres.imaging.resize import imresize
from superres.training.config import ConfigError, load_config


def _photo(size: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth image with edges and texture, like a photo crop."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=-1)
    base += (x > 0.5)[..., None] * 0.8 + rng.normal(0, 0.05, (size, size, 3))
    return np.clip((base - base.min()) / np.ptp(base) * 255, 0, 255).astype(np.uint8)


def test_isotropic_gaussian_kernel_is_the_formula():
    k = shaped_kernel(7, "iso", 1.5, 1.5, 0.0)
    r = np.arange(7) - 3
    g = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(k.numpy(), g / g.sum(), atol=1e-12)


@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_every_kernel_shape_sums_to_one_and_is_point_symmetric(shape):
    k = shaped_kernel(15, shape, 2.0, 0.8, 0.7, beta=1.7)
    assert k.sum().item() == pytest.approx(1.0)
    assert torch.allclose(k, k.flip(0, 1))
    assert k[7, 7] == k.max()  # peaks at the centre


def test_anisotropic_kernel_is_rotated():
    # sigma_x > sigma_y at angle 0 spreads along x; at 90 degrees, along y.
    k0 = shaped_kernel(21, "aniso", 3.0, 0.5, 0.0)
    k90 = shaped_kernel(21, "aniso", 3.0, 0.5, math.pi / 2)
    assert k0[10, 14] > k0[14, 10]
    assert torch.allclose(k0, k90.T, atol=1e-12)


def test_generalized_and_plateau_shapes_follow_beta():
    # beta > 1 gives a flatter top than the Gaussian; plateau keeps heavier tails.
    gauss = shaped_kernel(21, "iso", 2.0, 2.0, 0.0)
    flat = shaped_kernel(21, "generalized_iso", 2.0, 2.0, 0.0, beta=4.0)
    plateau = shaped_kernel(21, "plateau_iso", 2.0, 2.0, 0.0, beta=1.0)
    assert (flat[10, 11] / flat[10, 10]) > (gauss[10, 11] / gauss[10, 10])
    assert (plateau[10, 20] / plateau[10, 10]) > (gauss[10, 20] / gauss[10, 10])


def test_sinc_kernel_is_a_low_pass_with_ringing():
    k = sinc_kernel(21, math.pi / 3)
    assert k.sum().item() == pytest.approx(1.0)
    assert (k < 0).any()  # the side lobes that cause ringing
    spectrum = torch.fft.fft2(k).abs()
    assert spectrum[0, 0] > 0.99 and spectrum[10, 10] < 0.1  # passes DC, stops the highest frequency


def test_random_kernels_are_21x21_and_reproducible():
    settings = dict(sigma=(0.2, 3.0), shape_probs=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03), betag=(0.5, 4.0), betap=(1.0, 2.0), sinc_prob=0.1)
    a = [random_kernel(**settings, generator=torch.Generator().manual_seed(i)) for i in range(20)]
    b = [random_kernel(**settings, generator=torch.Generator().manual_seed(i)) for i in range(20)]
    assert all(k.shape == (21, 21) and torch.equal(k, l) for k, l in zip(a, b))
    assert all(k.sum().item() == pytest.approx(1.0, abs=1e-5) for k in a)
    assert len({k.numpy().tobytes() for k in a}) == 20


def test_fft_filter_equals_a_direct_reflect_padded_convolution():
    images = torch.rand(3, 3, 40, 33, dtype=torch.float64)
    kernels = torch.rand(3, 21, 21, dtype=torch.float64)  # not even symmetric
    padded = F.pad(images, (10, 10, 10, 10), mode="reflect")
    direct = F.conv2d(padded.reshape(1, 9, 60, 53), kernels.repeat_interleave(3, 0)[:, None], groups=9).reshape(3, 3, 40, 33)
    np.testing.assert_allclose(filter_batch(images, kernels).numpy(), direct.numpy(), rtol=1e-4, atol=1e-4)


def test_filter_replicates_edges_of_images_too_small_to_reflect():
    images = torch.rand(1, 1, 6, 6)
    out = filter_batch(images, torch.full((1, 21, 21), 1 / 441))
    assert out.shape == images.shape and torch.isfinite(out).all()


def test_poisson_noise_grows_with_brightness():
    levels = torch.linspace(0.1, 0.9, 256).repeat(64, 1)[None, None].repeat(1, 3, 1, 1)
    noisy = add_poisson_noise(levels, torch.tensor([1.0]), torch.tensor([False]), torch.Generator().manual_seed(0))
    noise = (noisy - levels)[0, 0]
    assert noise[:, 200:].std() > 1.5 * noise[:, :30].std()  # shot noise: variance proportional to the signal


def test_second_order_lr_has_the_lr_size_on_the_8bit_grid_and_is_reproducible():
    hr = torch.from_numpy(np.stack([_photo(96, s) for s in range(4)])).permute(0, 3, 1, 2).float() / 255
    lr = second_order_lr(hr, 4, SecondOrder(), torch.Generator().manual_seed(3))
    again = second_order_lr(hr, 4, SecondOrder(), torch.Generator().manual_seed(3))
    other = second_order_lr(hr, 4, SecondOrder(), torch.Generator().manual_seed(4))
    assert lr.shape == (4, 3, 24, 24)
    assert torch.equal(lr, again) and not torch.equal(lr, other)
    assert torch.equal(lr, (lr * 255).round() / 255) and lr.min() >= 0 and lr.max() <= 1
    # Degraded, yet still the same picture: close to the clean bicubic LR on average, not equal.
    clean = torch.from_numpy(np.stack([imresize(_photo(96, s), 1 / 4) for s in range(4)])).permute(0, 3, 1, 2).float() / 255
    diff = (lr - clean).abs().mean().item()
    assert 0.005 < diff < 0.2


def test_make_lr_batch_with_second_order_and_a_sharpened_target():
    hr = torch.from_numpy(np.stack([_photo(64, s) for s in range(2)])).permute(0, 3, 1, 2).contiguous()
    d = Degradations(second_order=SecondOrder(sharpen_target=True))
    lr, target = make_lr_batch(hr, 2, d, torch.Generator().manual_seed(0))
    assert lr.shape == (2, 3, 32, 32) and target.shape == (2, 3, 64, 64)
    plain = hr.float() / 255
    assert not torch.equal(target, plain)
    # Unsharp masking raises the high frequencies.
    lap = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    assert lap(target) > lap(plain)


def test_unsharp_mask_leaves_a_flat_image_alone():
    flat = torch.full((1, 3, 64, 64), 0.4)
    assert torch.allclose(unsharp_mask(flat), flat)


def test_second_order_config_is_checked_key_by_key():
    with pytest.raises(ValueError, match="noise_sigma"):
        DegradationStage(noise_sigma=(20.0, 1.0))
    with pytest.raises(ValueError, match="kernel_probs"):
        DegradationStage(kernel_probs=(1.0, 0.0))
    with pytest.raises(ValueError, match="second_order replaces"):
        Degradations(noise_sigma=(1.0, 2.0), second_order=SecondOrder())


def test_training_config_reads_the_second_order_section(tmp_path):
    raw = {
        "model": {"name": "fsrcnn", "scale": 2},
        "data": {"train": ["x"], "degradations": {"second_order": {"second": {"blur_prob": 0.5}, "final_sinc_prob": 0.3}}},
        "val": {"degrade": "real"},
    }
    config = load_config(raw)
    so = config.data.degradations.second_order
    assert so.second.blur_prob == 0.5 and so.final_sinc_prob == 0.3
    assert so.first == DegradationStage()  # the paper's defaults for what is not given
    raw["data"]["degradations"]["second_order"]["first"] = {"noise_sigmaa": [1, 2]}
    with pytest.raises(ConfigError, match="unknown key 'data.degradations.second_order.first.noise_sigmaa'"):
        load_config(raw)
    raw["data"]["degradations"]["second_order"]["first"] = {}
    raw["val"]["degrade"] = "jpeg400"
    with pytest.raises(ConfigError, match="jpeg400"):
        load_config(raw)


def test_jpeg_preset_is_the_bicubic_lr_saved_as_jpeg():
    hr = _photo(96)
    buffer = io.BytesIO()
    Image.fromarray(imresize(hr, 1 / 4)).save(buffer, format="JPEG", quality=40)
    expected = np.asarray(Image.open(buffer).convert("RGB"))
    np.testing.assert_array_equal(degrade(hr, 4, "jpeg40"), expected)


def test_noise_preset_adds_noise_of_the_named_sigma():
    hr = np.full((400, 400, 3), 128, np.uint8)
    lr = degrade(hr, 4, "noise8", key="a").astype(np.float64)
    assert lr.shape == (100, 100, 3)
    assert lr.std() == pytest.approx(8.0, rel=0.1)
    np.testing.assert_array_equal(degrade(hr, 4, "noise8", key="a"), degrade(hr, 4, "noise8", key="a"))
    assert not np.array_equal(degrade(hr, 4, "noise8", key="a"), degrade(hr, 4, "noise8", key="b"))


def test_real_preset_is_seeded_by_the_key():
    hr = _photo(96)
    a, b = degrade(hr, 4, "real", key="baby"), degrade(hr, 4, "real", key="baby")
    assert a.shape == (24, 24, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, degrade(hr, 4, "real", key="bird"))


@pytest.mark.parametrize("name", ["jpeg0", "jpeg101", "noise", "blur3", "Real"])
def test_unknown_presets_are_refused_with_the_accepted_forms(name):
    with pytest.raises(ValueError, match="expected jpegQ"):
        check_preset(name)
