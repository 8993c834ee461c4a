"""The large and classic zoo models: parameter counts against the papers, output shapes.

Parameter counts are taken on the meta device (no memory, no init time); forwards run on
tiny inputs, and only once for the three big networks, to keep the file fast on a CPU.
"""

from __future__ import annotations

import pytest
import torch

from superres.models import create


def count_parameters(name: str, scale: int, **hyperparameters) -> int:
    with torch.device("meta"):
        model = create(name, scale=scale, **hyperparameters)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, scale, hyperparameters, paper_count",
    [
        ("edsr-baseline", 2, {}, 1.37e6),  # Lim et al. 2017 / EDSR-PyTorch model table
        ("edsr", 2, {}, 40.7e6),  # EDSR-PyTorch model table (the paper rounds x4 to 43M)
        ("edsr", 4, {}, 43.1e6),
        ("rcan", 4, {}, 15.6e6),  # Zhang et al. 2018
        ("rrdbnet", 4, {}, 16.7e6),  # ESRGAN / BasicSR RRDBNet 23 blocks
        ("imdn", 2, {}, 0.694e6),  # Hui et al. 2019
        ("imdn", 4, {}, 0.715e6),
        ("srvggnet-compact", 4, {}, 0.621e6),  # realesr-animevideov3 (16 convs)
        ("srvggnet-compact", 4, {"convs": 32}, 1.21e6),  # realesr-general-x4v3 (32 convs)
    ],
)
def test_parameter_count_matches_paper(name, scale, hyperparameters, paper_count):
    assert count_parameters(name, scale, **hyperparameters) == pytest.approx(paper_count, rel=0.01)


def test_rrdbnet_x1_x2_only_widen_the_first_conv():
    # Real-ESRGAN's pixel-unshuffle puts 4 (x2) or 16 (x1) times the channels into conv_first.
    x4 = count_parameters("rrdbnet", 4)
    assert count_parameters("rrdbnet", 2) - x4 == 64 * 9 * 9  # 12 input channels instead of 3
    assert count_parameters("rrdbnet", 1) - x4 == 64 * 45 * 9  # 48 instead of 3


@pytest.mark.parametrize("name", ["edsr-baseline", "imdn", "srvggnet-compact"])
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_small_models_upscale_odd_sizes(name, scale):
    torch.manual_seed(0)
    model = create(name, scale=scale).eval()
    x = torch.rand(1, 3, 7, 5)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 7 * scale, 5 * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name, scale", [("edsr", 3), ("rcan", 2), ("rrdbnet", 4)])
def test_large_models_single_forward(name, scale):
    torch.manual_seed(0)
    model = create(name, scale=scale).eval()
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 7 * scale, 6 * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (1, 3)])
def test_rrdbnet_every_scale_and_size(scale, size):
    # A small trunk: the pixel-unshuffle padding and the cropping are what is under test.
    model = create("rrdbnet", scale=scale, blocks=1, features=8, growth=4).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, size[0] * scale, size[1] * scale)


def test_rrdbnet_x2_pads_odd_inputs_like_a_reflected_image():
    # On an odd input, x2 must equal running the reflect-padded image and cropping the result.
    torch.manual_seed(0)
    model = create("rrdbnet", scale=2, blocks=1, features=8, growth=4).eval()
    x = torch.rand(1, 3, 7, 9)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(padded)[..., :14, :18])


def test_srvggnet_untrained_tail_at_zero_is_nearest_upscaling():
    model = create("srvggnet-compact", scale=3).eval()
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    x = torch.rand(1, 3, 4, 5)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, x.repeat_interleave(3, dim=2).repeat_interleave(3, dim=3))


@pytest.mark.parametrize("name", ["edsr-baseline", "rcan"])
def test_mean_shift_is_fixed_and_rgb_range_rescales_exactly(name):
    # The mean shift is a buffer (never trained); a 255-range model whose first-layer biases
    # and mean are scaled accordingly computes the same function on [0, 1] inputs.
    torch.manual_seed(0)
    kwargs = {"groups": 1, "blocks": 2} if name == "rcan" else {"blocks": 2}
    unit = create(name, scale=2, **kwargs).eval()
    assert not any("mean" in n for n, _ in unit.named_parameters())
    assert unit.sub_mean.bias.tolist() == pytest.approx([-0.4488, -0.4371, -0.4040])
    wide = create(name, scale=2, rgb_range=255.0, **kwargs).eval()
    state = unit.state_dict()
    # A conv net without normalisation is positively homogeneous in its input once every
    # bias is scaled too, so scaling all biases by 255 maps the unit model to the 255 model.
    scaled = {k: (v * 255 if k.endswith("bias") and "attention" not in k and "mean" not in k else v) for k, v in state.items()}
    if name == "rcan":
        # Channel attention sees the pooled features, which scale by 255: undo it in its first conv.
        for k in scaled:
            if k.endswith("attention.down.weight"):
                scaled[k] = state[k] / 255
    scaled["sub_mean.bias"] = state["sub_mean.bias"] * 255
    scaled["add_mean.bias"] = state["add_mean.bias"] * 255
    wide.load_state_dict(scaled)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), unit(x), rtol=1e-4, atol=1e-5)
