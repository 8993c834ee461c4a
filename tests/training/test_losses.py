"""The training losses on known inputs: pixel, FFT, perceptual (VGG19) and adversarial."""

import math

import pytest
import torch
import torch.nn.functional as F
from synthetic import random_vgg19_state

from superres.errors import SuperresError
from superres.training.losses import (
    PerceptualLoss,
    VGG19Features,
    discriminator_adversarial_loss,
    feature_matching_loss,
    fft_amplitude_loss,
    fft_loss,
    generator_adversarial_loss,
    pixel_loss,
)


def test_pixel_losses_on_known_differences():
    sr = torch.tensor([0.0, 1.0, -2.0]).view(1, 1, 1, 3)
    hr = torch.zeros_like(sr)
    assert pixel_loss(sr, hr, "l1").item() == pytest.approx(1.0)  # (0 + 1 + 2) / 3
    assert pixel_loss(sr, hr, "mse").item() == pytest.approx(5 / 3)  # (0 + 1 + 4) / 3
    eps = 1e-3
    expected = (eps + math.sqrt(1 + eps**2) + math.sqrt(4 + eps**2)) / 3
    assert pixel_loss(sr, hr, "charbonnier", eps=eps).item() == pytest.approx(expected)
    # Charbonnier is eps where L1 is 0, and tends to L1 for large differences.
    assert pixel_loss(hr, hr, "charbonnier").item() == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="unknown pixel loss"):
        pixel_loss(sr, hr, "l3")


def test_fft_loss_is_zero_on_identical_inputs_and_known_on_an_offset():
    image = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert fft_loss(image, image.clone()).item() == 0.0
    assert fft_loss(image, image.flip(-1)).item() > 0
    # A constant offset c lives in the DC bin only: c * H * W (unnormalised forward FFT), so
    # the mean |difference| over the 4 x 3 complex bins' 24 real numbers is 16c / 24.
    zero = torch.zeros(1, 1, 4, 4)
    assert fft_loss(zero + 0.3, zero).item() == pytest.approx(16 * 0.3 / 24)


def test_fft_amplitude_loss_asks_for_texture_where_a_pixel_loss_asks_for_the_mean():
    texture = torch.rand(1, 3, 70, 70, generator=torch.Generator().manual_seed(0))
    hr = texture[..., 3:67, 3:67]
    assert fft_amplitude_loss(hr, hr.clone()).item() == 0.0
    # The same texture one pixel to the side: the right details in slightly wrong places.
    shifted = texture[..., 3:67, 4:68]
    # The mean of the plausible placements of a detail (what a pixel loss converges to).
    blurred = sum(texture[..., 3 + dy : 67 + dy, 3 + dx : 67 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    assert pixel_loss(blurred, hr, "l1") < pixel_loss(shifted, hr, "l1")
    assert fft_amplitude_loss(shifted, hr) < 0.2 * fft_amplitude_loss(blurred, hr)
    # Orthonormal, so on the pixels' scale: a 1-pixel image (window 1) differing by c scores c.
    assert fft_amplitude_loss(torch.full((1, 1, 1, 1), 0.3), torch.zeros(1, 1, 1, 1)).item() == pytest.approx(0.3)


def test_perceptual_loss_without_weights_is_one_clear_line():
    with pytest.raises(SuperresError) as info:
        PerceptualLoss(None, {"conv5_4": 1.0})
    message = str(info.value)
    assert "\n" not in message
    assert "loss.perceptual.vgg_weights" in message and "never downloads" in message


def test_perceptual_loss_names_a_missing_or_wrong_file(tmp_path):
    with pytest.raises(SuperresError, match="not found.*loss.perceptual.vgg_weights"):
        PerceptualLoss(str(tmp_path / "absent.pth"), {"conv1_2": 1.0})
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(SuperresError, match="cannot read VGG19 weights.*loss.perceptual.vgg_weights") as info:
        PerceptualLoss(str(garbage), {"conv1_2": 1.0})
    assert "\n" not in str(info.value)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(SuperresError, match="torchvision keys .missing features.0.weight"):
        PerceptualLoss(str(other), {"conv1_2": 1.0})
    wrong = tmp_path / "narrow.pth"
    torch.save({"features.0.weight": torch.zeros(32, 3, 3, 3), "features.0.bias": torch.zeros(32)}, wrong)
    with pytest.raises(SuperresError, match=r"features.0.weight has shape \(32, 3, 3, 3\)"):
        PerceptualLoss(str(wrong), {"conv1_1": 1.0})
    with pytest.raises(SuperresError, match="unknown VGG19 layer"):
        VGG19Features(["conv6_1"])


def test_vgg_taps_follow_torchvision_numbering_before_the_relu(tmp_path):
    state = random_vgg19_state(seed=1)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = VGG19Features(["conv1_2", "conv2_1"])
    vgg.load_weights(path)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    h = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = lambda h, i: F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1)
    conv1_2 = conv(F.relu(conv(h, 0)), 2)
    conv2_1 = conv(F.max_pool2d(F.relu(conv1_2), 2), 5)
    out = vgg(x)
    torch.testing.assert_close(out["conv1_2"], conv1_2)
    torch.testing.assert_close(out["conv2_1"], conv2_1)
    assert out["conv2_1"].min() < 0  # taken before the activation, as ESRGAN does


def test_perceptual_loss_is_zero_on_identical_images_and_trains_the_sr_only(vgg19_file):
    loss = PerceptualLoss(str(vgg19_file), {"conv1_2": 0.1, "conv5_4": 1.0})
    hr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert loss(hr, hr).item() == 0.0
    sr = hr.flip(-1).requires_grad_(True)
    value = loss(sr, hr)
    value.backward()
    assert value.item() > 0 and sr.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())  # the VGG is frozen
    loss.train()
    assert not loss.vgg.training  # and stays in eval mode


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "relativistic"])
def test_adversarial_losses_reward_the_side_that_is_right(kind):
    fooled = torch.tensor([[0.0]]), torch.tensor([[1.0]])  # (real, fake): D scores the fake higher
    sure = torch.tensor([[1.0]]), torch.tensor([[0.0]])  # D tells them apart
    d_fooled, d_sure = (discriminator_adversarial_loss(kind, r, f).item() for r, f in (fooled, sure))
    g_fooled, g_sure = (generator_adversarial_loss(kind, f, r).item() for r, f in (fooled, sure))
    assert d_sure < d_fooled and g_fooled < g_sure
    assert min(d_sure, d_fooled, g_sure, g_fooled) >= 0


def test_adversarial_losses_on_known_logits():
    zero, two = torch.zeros(1, 1), torch.full((1, 1), 2.0)
    log2 = math.log(2)
    # vanilla: BCE with logits; a logit of 0 is p = 0.5 either way.
    assert generator_adversarial_loss("vanilla", zero).item() == pytest.approx(log2)
    assert discriminator_adversarial_loss("vanilla", zero, zero).item() == pytest.approx(log2)
    assert generator_adversarial_loss("vanilla", two).item() == pytest.approx(math.log1p(math.exp(-2)))
    # lsgan: (D(fake) - 1)^2 for G; ((D(real) - 1)^2 + D(fake)^2) / 2 for D.
    assert generator_adversarial_loss("lsgan", torch.tensor([[0.0, 2.0]])).item() == pytest.approx(1.0)
    assert discriminator_adversarial_loss("lsgan", torch.ones(1, 1), zero).item() == 0.0
    assert discriminator_adversarial_loss("lsgan", zero, torch.ones(1, 1)).item() == pytest.approx(1.0)
    # relativistic average (ESRGAN): real 2 vs fake 0 -> each term is a logit of +-2.
    softplus = lambda v: math.log1p(math.exp(v))
    assert generator_adversarial_loss("relativistic", zero, two).item() == pytest.approx(softplus(2))
    assert discriminator_adversarial_loss("relativistic", two, zero).item() == pytest.approx(softplus(-2))
    with pytest.raises(ValueError, match="unknown GAN kind"):
        generator_adversarial_loss("wgan", zero)
    with pytest.raises(ValueError, match="real_logits"):
        generator_adversarial_loss("relativistic", zero)


def test_relativistic_generator_loss_does_not_train_through_the_real_logits():
    real = torch.randn(4, 1, requires_grad=True)
    fake = torch.randn(4, 1, requires_grad=True)
    generator_adversarial_loss("relativistic", fake, real).backward()
    assert real.grad is None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize("name, hyper", [("unet-discriminator", {"features": 8}), ("vgg-discriminator", {"features": 8, "input_size": 32})])
def test_feature_matching_is_zero_on_identical_images_and_trains_the_sr_only(name, hyper):
    from superres.models import create

    disc = create(name, **hyper).eval()
    hr = torch.rand(2, 3, 32, 32)
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_(True)
    logits, fake = disc.forward_features(sr)
    torch.testing.assert_close(logits, disc(sr))  # the same logits as the plain forward
    _, real = disc.forward_features(hr)
    _, same = disc.forward_features(hr)
    assert feature_matching_loss(same, real).item() == 0
    loss = feature_matching_loss(fake, real)
    assert loss.item() > 0
    # The HR side is a fixed target: no gradient reaches it, only the SR side moves.
    assert torch.autograd.grad(loss, real, retain_graph=True, allow_unused=True) == (None,) * len(real)
    loss.backward()
    assert sr.grad.abs().sum() > 0
