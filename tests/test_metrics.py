import math

import numpy as np
import pytest
import torch

from superres.imaging.color import modcrop, rgb_to_y, rgb_to_ycbcr, rgb_to_ycbcr_torch, ycbcr_to_rgb, ycbcr_to_rgb_torch
from superres.metrics import psnr, psnr_torch, ssim, ssim_torch


def test_y_uses_matlab_bt601_constants():
    assert rgb_to_y(np.array([[[0, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16 + 65.481)
    ycc = rgb_to_ycbcr(np.array([[[0, 0, 255]]], np.uint8))[0, 0]
    np.testing.assert_allclose(ycc, [16 + 24.966, 128 + 112.0, 128 - 18.214])


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(0).random((5, 4, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_ycbcr_equals_numpy_and_round_trips(dtype):
    rgb = np.random.default_rng(1).random((2, 6, 5, 3))  # (B, H, W, 3)
    batch = torch.from_numpy(rgb.transpose(0, 3, 1, 2)).to(dtype)  # (B, 3, H, W)
    ycc = rgb_to_ycbcr_torch(batch)
    assert ycc.dtype == dtype
    atol = 1e-4 if dtype == torch.float32 else 1e-10  # on the 0-255 scale
    np.testing.assert_allclose(ycc.numpy().transpose(0, 2, 3, 1), rgb_to_ycbcr(rgb), atol=atol)
    back = ycbcr_to_rgb_torch(ycc).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(back, ycbcr_to_rgb(rgb_to_ycbcr(rgb)), atol=atol / 255)
    np.testing.assert_allclose(back, rgb, atol=atol / 255)


def test_modcrop():
    assert modcrop(np.zeros((17, 22, 3)), 4).shape == (16, 20, 3)


def test_psnr_formula_and_shave():
    hr = np.zeros((10, 10), np.uint8)
    sr = hr.copy()
    sr[5, 5] = 10  # MSE = 100 / 100 = 1 on the full image
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / 1.0))
    sr2 = hr.copy()
    sr2[0, 0] = 200  # only in the border: shaved away
    assert psnr(sr2, hr, shave=1) == math.inf


def test_psnr_on_y_for_rgb_and_as_is_for_gray():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    y_mse = np.mean((rgb_to_y(sr) - rgb_to_y(hr)) ** 2)
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / y_mse))
    rgb_mse = np.mean((sr.astype(float) - hr) ** 2)
    assert psnr(sr, hr, y_only=False) == pytest.approx(10 * math.log10(255**2 / rgb_mse))
    gray = hr[..., :1]
    assert psnr(sr[..., :1], gray) == pytest.approx(psnr(sr[..., 0], hr[..., 0]))


def test_ssim_identical_is_one_and_known_value():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # Constant images differing by a level: SSIM = (2*mu_a*mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    c1 = (0.01 * 255) ** 2
    x, y = np.full((20, 20), 100, np.uint8), np.full((20, 20), 110, np.uint8)
    assert ssim(x, y) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))
    assert ssim(x, y) < 1


def test_numpy_and_torch_metrics_agree():
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (2, 30, 26, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    t_sr = torch.from_numpy(sr).permute(0, 3, 1, 2).double()
    t_hr = torch.from_numpy(hr).permute(0, 3, 1, 2).double()
    for y_only in (True, False):
        p = psnr_torch(t_sr, t_hr, shave=2, y_only=y_only)
        s = ssim_torch(t_sr, t_hr, shave=2, y_only=y_only)
        for i in range(2):
            assert p[i].item() == pytest.approx(psnr(sr[i], hr[i], shave=2, y_only=y_only), abs=1e-9)
            assert s[i].item() == pytest.approx(ssim(sr[i], hr[i], shave=2, y_only=y_only), abs=1e-9)
