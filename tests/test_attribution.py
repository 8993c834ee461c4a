"""Local Attribution Maps: answers known in advance.

- bicubic: the map is exactly zero outside the cubic kernel's support around the box, and
  nonzero across all of it (derived from MATLAB's sampling positions, not from our weights);
- every shipped model with a finite receptive field: exactly zero outside it, the field
  derived here from each architecture's layers (and the chroma bicubic of luma models);
- completeness of integrated gradients: the map sums to the feature's change along the
  path within 1% at the paper's 50 steps, and running on the receptive window equals running on the
  whole image.

Images are small and steps few, so each test takes a second or two on one core.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import superres
from superres.attribution import (
    DEFAULT_STEPS,
    Attribution,
    Box,
    ExplainError,
    diffusion_index,
    explain,
    gini,
    heatmap_overlay,
    parse_box,
    receptive_radius,
)
from superres.models import create, get_spec, list_specs, load_for_scale
from superres.models.espcn import ESPCN
from superres.models.fsrcnn import FSRCNN
from superres.models.srvggnet import SRVGGNetCompact
from superres.models.swiftrep import SwiftRep

# Completeness: |sum(map) - (D(input) - D(baseline))| / |D(input) - D(baseline)| at the paper's
# 50 midpoint steps. Measured on these test images at 8 / 16 / 32 / 50 / 100 steps: ESPCN x4
# 8.7e-3 / 8.3e-4 / 5.6e-4 / 9.7e-5 / 2.4e-5, SwiftRep x4 8.6e-3 / 1.7e-3 / 5.8e-4 / 2.3e-4 /
# 1.9e-4, FSRCNN x2 9.0e-3 / 1.2e-2 / 8.4e-3 / 2.3e-3 / 7.0e-4: FSRCNN's PReLUs of 12 channels
# switch along the path, and the rule converges slowly across such kinks.
COMPLETENESS_TOLERANCE = 1e-2


def _image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, uint8: texture everywhere, so no gradient vanishes by accident."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.3 * np.sin(xx / 2.3 + yy / 3.1)[..., None] * np.linspace(0.6, 1.0, channels)
    noisy = base + 0.15 * rng.standard_normal((height, width, channels))
    return np.clip(noisy * 255, 0, 255).astype(np.uint8)


def _nonzero_bounds(lam: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(np.any(lam != 0, axis=1))
    cols = np.flatnonzero(np.any(lam != 0, axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _zero_outside(lam: np.ndarray, bounds: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = bounds  # inclusive
    inside = np.zeros(lam.shape, dtype=bool)
    inside[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = True
    return bool(np.all(lam[~inside] == 0.0))


# --------------------------------------------------------------------------- receptive fields, derived


def _bicubic_taps(first: int, last: int, scale: int) -> tuple[int, int]:
    """Input indices with a nonzero cubic weight for output indices first..last (0-based).

    MATLAB samples output pixel o (0-based) at input position u = (o + 0.5) / s - 0.5; the
    cubic kernel is nonzero for |u - j| < 2 (it is zero at 1 and 2), so j runs from
    floor(u - 2) + 1 to ceil(u + 2) - 1."""
    u_first = (first + 0.5) / scale - 0.5
    u_last = (last + 0.5) / scale - 0.5
    return math.floor(u_first - 2) + 1, math.ceil(u_last + 2) - 1


def _lr_rows(first: int, last: int, model: nn.Module) -> tuple[int, int]:
    """Input rows that output rows first..last can depend on, from the architecture's layers."""
    s = model.scale
    if isinstance(model, ESPCN):
        # Stride-1 convolutions in LR space, then a pixel shuffle: output o is LR position o // s.
        reach = sum((conv.kernel_size[0] - 1) // 2 for conv in model.body if isinstance(conv, nn.Conv2d))
        return first // s - reach, last // s + reach
    if isinstance(model, SwiftRep):
        # head, every body block and the tail are 3x3 (the 1x1 branch folds into it); the anchor
        # adds the pixel itself. Then a pixel shuffle.
        convs = [model.head, *(block.conv3 for block in model.body), model.tail]
        reach = sum((conv.kernel_size[0] - 1) // 2 for conv in convs)
        return first // s - reach, last // s + reach
    if isinstance(model, FSRCNN):
        reach = sum((conv.kernel_size[0] - 1) // 2 for conv in model.body if isinstance(conv, nn.Conv2d))
        # The transposed convolution writes output o = i * s - p + t, t in 0..K-1, from feature i.
        k, p = model.deconv.kernel_size[0], model.deconv.padding[0]
        return math.ceil((first + p - (k - 1)) / s) - reach, (last + p) // s + reach
    if isinstance(model, SRVGGNetCompact):
        # 3x3 convolutions and per-channel PReLUs in LR space, a pixel shuffle, and the input
        # upscaled by nearest (output o reads LR pixel o // s) added.
        reach = sum((conv.kernel_size[0] - 1) // 2 for conv in model.body if isinstance(conv, nn.Conv2d))
        return first // s - reach, last // s + reach
    raise AssertionError(f"no receptive field derived for {type(model).__name__}: add one here")


def _support(model: nn.Module, box: Box, channels_in: int) -> tuple[int, int, int, int]:
    """Inclusive (x0, y0, x1, y1) of the input pixels that can influence ``box``."""
    s = model.scale
    y0, y1 = _lr_rows(box.y, box.y + box.height - 1, model)
    x0, x1 = _lr_rows(box.x, box.x + box.width - 1, model)
    if getattr(model, "channels", 3) == 1 and channels_in == 3:
        # Cb and Cr of a luma model are bicubic: their support joins the network's.
        by0, by1 = _bicubic_taps(box.y, box.y + box.height - 1, s)
        bx0, bx1 = _bicubic_taps(box.x, box.x + box.width - 1, s)
        x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
    return x0, y0, x1, y1


SHIPPED = [(spec.name, scale) for spec in list_specs() if spec.is_generator for scale in spec.shipped_scales()]


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_attribution_is_zero_outside_the_kernel_support(scale):
    image = _image(20, 20)
    box = Box(x=7 * scale + 1, y=6 * scale + 2, width=2 * scale + 1, height=2 * scale)
    result = explain(create("bicubic", scale=scale), image, box, steps=4, crop=False)
    y0, y1 = _bicubic_taps(box.y, box.y + box.height - 1, scale)
    x0, x1 = _bicubic_taps(box.x, box.x + box.width - 1, scale)
    assert _zero_outside(result.map, (x0, y0, x1, y1))
    if scale != 3:
        # At x2 and x4 no sample falls on an input pixel, so every tap within 2 weighs:
        # the support is exactly the derived one. (At x3 some do, and their +-1 taps weigh 0.)
        assert _nonzero_bounds(result.map) == (x0, y0, x1, y1)


@pytest.mark.parametrize("name,scale", [pair for pair in SHIPPED if not pair[0].startswith("swiftrep")] + [("swiftrep", 2), ("swiftrep-real-gan", 4)])
def test_shipped_models_are_zero_outside_their_receptive_field(name, scale):
    model = load_for_scale(name, scale)
    swiftrep = get_spec(name).builder is get_spec("swiftrep").builder  # the real-world models too
    size = 80 if swiftrep else 40  # SwiftRep reaches 26 input pixels each way
    image = _image(size, size, seed=scale)
    centre = size // 2 * scale
    box = Box(x=centre - 3, y=centre - 5, width=7, height=9)
    result = explain(model, image, box, steps=3, crop=False)
    support = _support(model, box, channels_in=3)
    assert _zero_outside(result.map, support)
    # And the field is no larger than it must be: attribution reaches its edges.
    assert _nonzero_bounds(result.map) == support


def test_every_shipped_model_has_a_derived_receptive_field():
    for name, scale in SHIPPED:
        _lr_rows(0, 0, load_for_scale(name, scale))  # raises for an architecture not derived above


@pytest.mark.parametrize("name,scale", [("bicubic", 4), *SHIPPED])
def test_completeness_within_tolerance(name, scale):
    image = _image(32, 32, seed=1)
    result = explain(load_for_scale(name, scale), image, Box(10 * scale, 12 * scale, 4 * scale, 3 * scale), steps=DEFAULT_STEPS)
    assert result.feature > result.baseline_feature  # the blurred baseline has less detail
    assert result.completeness_error < COMPLETENESS_TOLERANCE
    assert float(result.map.sum()) == pytest.approx(result.feature - result.baseline_feature, rel=COMPLETENESS_TOLERANCE)


def test_more_steps_integrate_more_exactly():
    model = load_for_scale("espcn", 3)
    image = _image(24, 24, seed=2)
    box = Box(30, 30, 9, 9)
    coarse = explain(model, image, box, steps=4).completeness_error
    fine = explain(model, image, box, steps=32).completeness_error
    assert fine < coarse / 4


@pytest.mark.parametrize("name,scale", [("fsrcnn", 2), ("swiftrep", 2)])
def test_running_on_the_receptive_window_equals_the_whole_image(name, scale):
    model = load_for_scale(name, scale)
    image = _image(72, 72, seed=3)
    box = Box(90, 70, 8, 8)
    windowed = explain(model, image, box, steps=3)
    whole = explain(model, image, box, steps=3, crop=False)
    assert windowed.region != (0, 0, 72, 72)  # it did run on a window
    assert whole.region == (0, 0, 72, 72)
    np.testing.assert_allclose(windowed.map, whole.map, atol=1e-5 * np.abs(whole.map).max())
    assert windowed.diffusion_index == pytest.approx(whole.diffusion_index, abs=1e-3)


class _GlobalBrightness(nn.Module):
    """A 3x3 convolution plus the image's mean: local by its layers, global by its forward."""

    def __init__(self):
        super().__init__()
        self.scale = 2
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.shuffle = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.shuffle(self.conv(x) + x.mean(dim=(2, 3), keepdim=True))


def test_a_model_that_sees_the_whole_image_is_run_on_the_whole_image():
    model = _GlobalBrightness()
    assert receptive_radius(model) == 2  # its layers alone claim a small reach...
    result = explain(model, _image(40, 40), Box(10, 10, 6, 6), steps=2)
    assert result.region == (0, 0, 40, 40)  # ...which the check on two windows disproves
    assert result.map[35, 35] != 0


def test_explaining_after_upscaling_in_inference_mode():
    # The bicubic weights are cached per size; made first under inference_mode (as the
    # Upscaler runs), they must still serve a computation that needs gradients.
    from superres.imaging.resize import imresize_torch

    with torch.inference_mode():
        imresize_torch(torch.rand(1, 2, 13, 11), size=(39, 33))
    x = torch.rand(1, 2, 13, 11, requires_grad=True)
    imresize_torch(x, size=(39, 33)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_receptive_radius():
    assert receptive_radius(create("bicubic", scale=2)) is None  # a resampler, not layers
    assert receptive_radius(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1))) is None
    assert receptive_radius(nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))) == 4


# --------------------------------------------------------------------------- the numbers


def test_gini_and_diffusion_index_known_values():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 8)[0]) == pytest.approx(1 - 1 / 8)
    assert gini(np.array([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.5)
    assert gini(np.array([1.0, 2.0, 3.0])) == pytest.approx(sum(abs(a - b) for a in (1, 2, 3) for b in (1, 2, 3)) / (2 * 9 * 2))
    assert gini(np.zeros(5)) == 0.0
    assert diffusion_index(np.full((4, 4), -2.0)) == pytest.approx(100.0)  # signs do not matter
    assert diffusion_index(np.eye(1, 16)[0].reshape(4, 4)) == pytest.approx(100 / 16)


def test_result_reports_the_box_and_outside_share():
    result = explain("espcn", _image(24, 24), "30,33,9,6", scale=3, steps=2)
    assert isinstance(result, Attribution)
    assert result.model == "espcn" and result.scale == 3
    assert result.input_box == (10, 11, 13, 13)
    outside = np.abs(result.map).sum() - np.abs(result.map[11:13, 10:13]).sum()
    assert result.outside_share == pytest.approx(outside / np.abs(result.map).sum())
    assert 0 < result.outside_share < 1
    info = result.to_json()
    assert info["box"] == {"x": 30, "y": 33, "width": 9, "height": 6}
    assert info["input_box"] == {"x": 10, "y": 11, "width": 3, "height": 2}
    assert set(info) >= {"diffusion_index", "outside_share", "completeness_error", "steps", "sigma", "seconds"}


def test_top_level_function_and_image_kinds():
    from PIL import Image

    image = _image(16, 16)
    by_array = superres.explain("bicubic", image, (8, 8, 8, 8), scale=2, steps=2)
    by_pil = superres.explain("bicubic", Image.fromarray(image), (8, 8, 8, 8), scale=2, steps=2)
    by_float = superres.explain("bicubic", image.astype(np.float32) / 255, (8, 8, 8, 8), scale=2, steps=2)
    np.testing.assert_allclose(by_array.map, by_pil.map)
    np.testing.assert_allclose(by_array.map, by_float.map, atol=1e-9)
    grey = superres.explain("espcn", image[..., 0], (8, 8, 8, 8), scale=2, steps=2)
    assert grey.map.shape == (16, 16)


@pytest.mark.parametrize(
    "box,message",
    [
        ("1,2,3", "X,Y,W,H"),
        ("a,b,c,d", "X,Y,W,H"),
        ("0,0,1,5", "too small"),
        ("60,0,8,8", "not inside the 64x64 output"),
        ("-1,0,8,8", "not inside"),
    ],
)
def test_bad_boxes_are_one_line_errors(box, message):
    with pytest.raises(ExplainError, match=message):
        explain("bicubic", _image(16, 16), box, scale=4, steps=1)


def test_bad_options():
    with pytest.raises(ExplainError, match="steps"):
        explain("bicubic", _image(8, 8), "0,0,4,4", scale=2, steps=0)
    with pytest.raises(ExplainError, match="sigma"):
        explain("bicubic", _image(8, 8), "0,0,4,4", scale=2, sigma=0)
    assert parse_box(" 1, 2 ,3,4") == Box(1, 2, 3, 4)


def test_heatmap_overlay_marks_the_box():
    image = _image(16, 16)
    result = explain("bicubic", image, (12, 12, 8, 8), scale=2, steps=2)
    overlay = heatmap_overlay(image, result)
    assert overlay.shape == (16, 16, 3) and overlay.dtype == np.uint8
    x0, y0, x1, y1 = result.input_box
    assert tuple(overlay[y0 - 1, x0 - 1]) == tuple(overlay[y1, x1]) == (0, 230, 255)  # the outline, just outside
    far = overlay[0, 15].astype(int)
    near = overlay[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert far[0] == far[1] == far[2]  # no attribution: plain grey
    assert len(set(near.tolist())) > 1  # attribution: coloured
    with pytest.raises(ExplainError, match="map is"):
        heatmap_overlay(_image(8, 8), result)


def _model_input_of_upscale(model: nn.Module, image) -> np.ndarray:
    """The (C, H, W) float32 image the network itself receives when ``superres.Upscaler``
    upscales ``image`` (grey goes to an RGB network as three equal channels)."""
    from superres.inference import Upscaler

    upscaler = Upscaler(model, scale=model.scale, name="probe", device="cpu", tile=0, precision="fp32")
    seen = []
    handle = upscaler.runner.model.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    try:
        upscaler.upscale(image)
    finally:
        handle.remove()
    return seen[0][0].float().numpy()


def test_explain_sees_the_image_upscale_runs():
    """A 16-bit grey image and an RGBA one with colour under its transparent pixels: the map
    is that of the very pixels the network runs on in an upscale (before, explain reduced
    I;16 to 8-bit L and dropped alpha without filling what it hid, as upscale does)."""
    from PIL import Image

    torch.manual_seed(0)
    model = create("swiftrep", scale=2, blocks=1, features=8).eval()
    box = (8, 8, 8, 8)

    rng = np.random.default_rng(3)
    grey16 = (_image(16, 16, channels=1)[..., 0].astype(np.uint16) * 257 + rng.integers(0, 257, (16, 16))).astype(np.uint16)
    pil16 = Image.fromarray(grey16)
    assert pil16.mode == "I;16"
    seen = _model_input_of_upscale(model, pil16)  # (3, H, W): the grey repeated
    np.testing.assert_array_equal(seen[0], grey16.astype(np.float32) / 65535)
    by_pil = explain(model, pil16, box, steps=3)
    by_seen = explain(model, seen[:1].transpose(1, 2, 0), box, steps=3)
    np.testing.assert_array_equal(by_pil.map, by_seen.map)
    by_8bit = explain(model, pil16.convert("L"), box, steps=3)
    assert not np.array_equal(by_pil.map, by_8bit.map)

    rgba = np.dstack([_image(16, 16, seed=1), np.full((16, 16), 255, np.uint8)])
    rgba[:, :6, 3] = 0  # transparent, with colour the model never sees
    rgba[:, :6, :3] = 255
    pil_rgba = Image.fromarray(rgba)
    seen = _model_input_of_upscale(model, pil_rgba)
    by_rgba = explain(model, pil_rgba, box, steps=3)
    by_seen = explain(model, seen.transpose(1, 2, 0), box, steps=3)
    np.testing.assert_array_equal(by_rgba.map, by_seen.map)
    assert not np.array_equal(by_rgba.map, explain(model, rgba[..., :3], box, steps=3).map)


def test_the_luma_join_is_differentiable():
    """Upscaling's colour join (Y from the model, the chroma from bicubic) under autograd: the
    same numbers as without it, and gradients that reach the input."""
    from superres.imaging.color import chroma_to_rgb_torch, rgb_from_luma_torch, rgb_to_y_torch

    rgb = torch.rand(1, 3, 6, 5, dtype=torch.float32, requires_grad=True)
    joined = rgb_from_luma_torch(rgb_to_y_torch(rgb), chroma_to_rgb_torch(rgb))
    joined.sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    with torch.no_grad():
        plain = rgb_from_luma_torch(rgb_to_y_torch(rgb), chroma_to_rgb_torch(rgb))
    torch.testing.assert_close(joined.detach(), plain, rtol=0, atol=0)
    torch.testing.assert_close(plain, rgb.detach(), rtol=0, atol=1e-5)
