"""The classic networks and the GAN discriminators: sizes against the papers, and the
behaviour each one adds beyond the registry-wide tests (bicubic inside SRCNN and VDSR,
UNetSR's padding, SRResNet's upsampler, the discriminators' input sizes).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from superres.imaging.resize import imresize_torch
from superres.models import create
from superres.models.srresnet import SRResNet
from superres.models.summary import model_summary


def parameters(name: str, scale: int | None = 4, **hyperparameters) -> int:
    with torch.device("meta"):
        model = create(name, scale=scale, **hyperparameters)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, hyperparameters, expected, paper",
    [
        # Dong et al. TPAMI 2016 count weights only (8,032 and 57,184), on Y; + biases.
        ("srcnn", {"channels": 1}, 57_184 + 64 + 32 + 1, 57_184),
        ("srcnn-915", {"channels": 1}, 8_032 + 64 + 32 + 1, 8_032),
        ("srcnn", {}, 69_251, None),  # RGB in and out
        ("vdsr", {"channels": 1}, 665_921, 665e3),  # Kim et al. 2016: 20 layers of 64 3x3 filters
        ("vdsr", {}, 668_227, None),
        ("srresnet", {}, 1_548_547, 1.5e6),  # the usual 1.5M of SRResNet at x4
    ],
)
def test_generator_parameter_counts(name, hyperparameters, expected, paper):
    count = parameters(name, **hyperparameters)
    assert count == expected
    if paper is not None:
        assert count == pytest.approx(paper, rel=0.04)


@pytest.mark.parametrize(
    "name, hyperparameters, expected",
    [
        # conv 4.68M + Dense(512 * 6 * 6 -> 1024) 18.9M
        ("srgan-discriminator", {}, 23_563_649),
        # BasicSR's VGGStyleDiscriminator128 / 256 (num_feat=64)
        ("vgg-discriminator", {}, 14_499_401),
        ("vgg-discriminator", {"input_size": 256}, 14_499_401 + 512 * 512 * 9 + 512 * 512 * 16 + 4 * 512),
        # Real-ESRGAN's UNetDiscriminatorSN(num_feat=64)
        ("unet-discriminator", {}, 4_376_897),
    ],
)
def test_discriminator_parameter_counts(name, hyperparameters, expected):
    assert parameters(name, scale=None, **hyperparameters) == expected


@pytest.mark.parametrize(
    "name, per_output_pixel",
    [
        ("srcnn", 9 * 9 * 3 * 64 + 5 * 5 * 64 * 32 + 5 * 5 * 32 * 3),
        ("srcnn-915", 9 * 9 * 3 * 64 + 64 * 32 + 5 * 5 * 32 * 3),
        ("vdsr", 9 * (3 * 64 + 18 * 64 * 64 + 64 * 3)),
    ],
)
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_hr_space_networks_cost_the_same_per_output_pixel_at_every_scale(name, per_output_pixel, scale):
    assert model_summary(name, scale).macs_per_output_pixel == per_output_pixel


def test_srresnet_multiply_adds_at_x4():
    per_lr_pixel = (
        81 * 3 * 64  # head
        + 16 * 2 * 9 * 64 * 64  # residual blocks
        + 9 * 64 * 64  # conv before the long skip
        + 9 * 64 * 256 * (1 + 4)  # x2 stages at 1x and 2x the LR size
        + 16 * 81 * 64 * 3  # 9x9 output conv at 4x the LR size
    )
    assert model_summary("srresnet", 4).macs_per_output_pixel == per_lr_pixel / 16


@pytest.mark.parametrize("name", ["srcnn", "vdsr"])
def test_weights_do_not_depend_on_the_scale(name):
    # Only the bicubic step knows the scale, so weights trained at one scale load at another.
    x2 = create(name, scale=2)
    x3 = create(name, scale=3)
    x3.load_state_dict(x2.state_dict())


def test_vdsr_with_a_zero_residual_is_matlab_bicubic():
    model = create("vdsr", scale=3).eval()
    last = model.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(model(x), imresize_torch(x, 3), rtol=0, atol=0)


def test_srcnn_sees_the_bicubic_upscale():
    # A 9-1-5 SRCNN made an identity (centre taps only, positive inputs pass the ReLUs)
    # returns the bicubic upscale: the module upscales before its first convolution.
    model = create("srcnn-915", scale=2, n1=3, n2=3).eval()
    with torch.no_grad():
        for conv in (model.extract, model.map, model.reconstruct):
            conv.weight.zero_()
            conv.bias.zero_()
            k = conv.kernel_size[0] // 2
            conv.weight[torch.arange(3), torch.arange(3), k, k] = 1.0
        x = torch.rand(1, 3, 5, 6) * 0.5 + 0.25  # bicubic overshoot stays positive
        torch.testing.assert_close(model(x), imresize_torch(x, 2))


@pytest.mark.parametrize("scale, stages", [(2, [2]), (3, [3]), (4, [2, 2]), (8, [2, 2, 2])])
def test_srresnet_upsampler_stages(scale, stages):
    model = create("srresnet", scale=scale)
    shuffles = [m.upscale_factor for m in model.upsample if isinstance(m, torch.nn.PixelShuffle)]
    assert shuffles == stages


def test_srresnet_rejects_a_scale_it_cannot_build():
    with pytest.raises(ValueError, match="not 5"):
        SRResNet(scale=5)


def test_srresnet_has_batch_norm_in_every_residual_block():
    model = create("srresnet", scale=4)
    assert len(model.body) == 16
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 16 * 2 + 1


@pytest.mark.parametrize("size", [(7, 9), (5, 5), (1, 2), (13, 4)])
def test_unet_sr_on_any_size_equals_the_padded_image_cropped(size):
    torch.manual_seed(0)
    model = create("unet-sr", scale=2, features=8).eval()
    x = torch.rand(1, 3, *size)
    padded = F.pad(x, (0, -size[1] % 4, 0, -size[0] % 4), mode="replicate")
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(y, model(padded)[..., : 2 * size[0], : 2 * size[1]], rtol=0, atol=0)
    assert y.shape == (1, 3, 2 * size[0], 2 * size[1])


def test_unet_sr_levels_set_the_padding_multiple():
    model = create("unet-sr", scale=3, features=8, levels=3).eval()
    assert len(model.encoder) == len(model.decoder) == 3
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 10)).shape == (1, 3, 27, 30)


def test_unet_sr_with_a_zero_tail_is_nearest_neighbour():
    model = create("unet-sr", scale=4, features=8).eval()
    torch.nn.init.zeros_(model.tail.weight)
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3), rtol=0, atol=0)


def test_srgan_discriminator_follows_its_input_size():
    model = create("srgan-discriminator", input_size=32).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="multiple of 16"):
        create("srgan-discriminator", input_size=40)


def test_vgg_discriminator_stages_reach_4x4():
    model = create("vgg-discriminator", input_size=256)
    strided = [m for m in model.features if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 6
    assert [m.out_channels for m in strided] == [64, 128, 256, 512, 512, 512]
    with pytest.raises(ValueError, match="4 \\* 2\\^k"):
        create("vgg-discriminator", input_size=96)


def test_unet_discriminator_spectral_norm_on_all_but_first_and_last():
    model = create("unet-discriminator")
    normalised = {name.split(".parametrizations")[0] for name, _ in model.named_parameters() if ".parametrizations." in name}
    assert normalised == {"down.0", "down.1", "down.2", "up.0", "up.1", "up.2", "refine.0", "refine.1"}
    assert "conv0.weight" in model.state_dict() and "out.weight" in model.state_dict()


def test_unet_discriminator_per_pixel_logits_with_and_without_skips():
    for skip in (True, False):
        model = create("unet-discriminator", features=8, skip_connection=skip).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 3, 24, 40)).shape == (2, 1, 24, 40)
