"""Network interpolation: the ends are the two models, the middle is the linear blend of every
tensor, and models that cannot be blended are refused with the reason."""

from __future__ import annotations

import pytest
import torch

from superres.models import create
from superres.models.interpolate import InterpolationError, interpolate


def _pair(name="swiftrep", **hyper):
    torch.manual_seed(0)
    a = create(name, scale=4, **hyper).eval()
    torch.manual_seed(1)
    b = create(name, scale=4, **hyper).eval()
    return a, b


def test_the_ends_are_the_two_models_and_the_middle_is_the_blend():
    a, b = _pair(blocks=2)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(interpolate(a, b, 0.0)(x), a(x))
        torch.testing.assert_close(interpolate(a, b, 1.0)(x), b(x))
    mid = interpolate(a, b, 0.3).state_dict()
    for k, v in a.state_dict().items():
        torch.testing.assert_close(mid[k], 0.7 * v + 0.3 * b.state_dict()[k])


def test_interpolation_leaves_both_inputs_untouched():
    a, b = _pair(blocks=2)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    interpolate(a, b, 0.5)
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_a_strength_outside_0_1_is_refused(alpha):
    a, b = _pair(blocks=2)
    with pytest.raises(InterpolationError, match="strength must lie in"):
        interpolate(a, b, alpha)


def test_different_architectures_are_refused():
    a = create("swiftrep", scale=4, blocks=2)
    b = create("swiftrep", scale=4, blocks=3)
    with pytest.raises(InterpolationError, match="cannot blend"):
        interpolate(a, b, 0.5)
    with pytest.raises(InterpolationError, match="cannot blend"):
        interpolate(create("espcn", scale=4), a, 0.5)
