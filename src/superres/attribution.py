"""Which input pixels a region of a super-resolved image came from: Local Attribution Maps.

Gu and Dong, "Interpreting Super-Resolution Networks with Local Attribution Maps", CVPR 2021.
For a box in the *output*, LAM takes

- a local feature of the output, ``D(F(I))``: the sum, over the box, of the output's
  gradient magnitude ``sqrt(dx^2 + dy^2)`` (forward differences between neighbouring output
  pixels inside the box, summed over colour channels): edges and texture, which is what an
  SR network adds and what a reader has to trust;
- a path from a baseline to the input: the input blurred by a Gaussian whose sigma falls
  from ``sigma`` to 0, ``gamma(a) = I * G(sigma (1 - a))`` ("progressive blurring"); the
  baseline ``gamma(0)`` is the input without the detail the network could build on;
- integrated gradients along that path: ``A_i = integral_0^1 dD/dgamma_i * dgamma_i/da da``,
  summed over each pixel's colour channels.

By construction ``sum(A) = D(F(I)) - D(F(gamma(0)))`` (completeness); the integral is taken
with ``steps`` midpoint evaluations, each weighted by the exact change of the path over its
step, so the sum telescopes and only the curvature of ``D(F(gamma))`` within a step is lost
(:attr:`Attribution.completeness_error` reports it). The Diffusion Index is ``(1 - G) * 100``,
``G`` the Gini coefficient of ``|A|``: low when a few pixels carry the attribution, high when
it is spread; it depends on the image's size, so compare it between models on one image.

What differs from the paper's code: the gradient magnitude is taken only between output
pixels inside the box (theirs reads one row and column beyond it), so that "the box" means
exactly the output pixels named; ``sqrt`` gets a 1e-6 floor, which keeps the gradient finite
where the output is flat. The image is taken as upscaling takes it
(:mod:`superres.inference.channels`): 16-bit stays 16-bit, the colour under transparent
pixels is filled as upscaling fills it, and colour images on a luma model (FSRCNN, ESPCN as
shipped) go through the same split: Y by the network, Cb and Cr by bicubic, so the map
explains the colour image a user sees.

Cost: ``steps`` forward and backward passes. A model whose output at a pixel depends only on
nearby input pixels (every convolutional model here) is run only on the input window that can
reach the box (its receptive radius, as its contract states it or traced from its layers, and
checked by running it on two windows), which makes the cost independent of the image's size: SwiftRep x4 on a 256 px
input takes seconds rather than minutes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import SuperresError
from superres.extras import require
from superres.inference.channels import adapt_channels_tensor, model_planes
from superres.models.contract import input_channels, model_contract, receptive_radius

__all__ = [
    "Attribution",
    "Box",
    "EXPLAIN_MEMORY_CAP",
    "ExplainCancelled",
    "ExplainError",
    "DEFAULT_SIGMA",
    "DEFAULT_STEPS",
    "diffusion_index",
    "explain",
    "gini",
    "heatmap_overlay",
    "parse_box",
    "plan_memory",
    "receptive_radius",
]

#: The paper's demo settings: 50 path steps, from a Gaussian blur of sigma 1.2 (a 9-tap kernel).
DEFAULT_STEPS = 50
DEFAULT_SIGMA = 1.2

# sqrt's floor in the gradient magnitude, in [0, 1] pixel units: far below one 8-bit level
# (0.004), so the feature is the paper's, and its gradient stays finite on flat output.
_EPS = 1e-6
# A window's box output may differ from a larger window's by float rounding only: convolution
# kernels sum in another order on another size. A global operation (channel attention, a
# mean) moves it by far more.
_LOCALITY_TOLERANCE = 1e-5
# Path points per forward/backward pass: batched while the batch stays this many input pixels.
_BATCH_PIXELS = 96 * 96
# The allocator's share above the planned tensors (fragmentation, workspaces): measured.
_MEASURED_MARGIN = 1.15


#: The most host memory an explanation plans to hold unless ``SUPERRES_MEMORY_LIMIT`` says
#: otherwise (and never more than half the available RAM). A whole-image box of a 1000x1000
#: image through SwiftRep x4 planned 19 GB: the backward pass keeps every activation of the
#: window, so an explanation is refused where an upscale of the same image runs tile by tile.
EXPLAIN_MEMORY_CAP = 2 << 30


class ExplainError(SuperresError):
    """A bad box, image or option for :func:`explain`; the message is one line."""


class ExplainCancelled(ExplainError):
    """An explanation stopped between path steps because its caller gave up (a client gone, a
    server shutting down)."""


@dataclass(frozen=True)
class Box:
    """A rectangle of the output (super-resolved) image, in output pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"

    def input_footprint(self, scale: int) -> tuple[int, int, int, int]:
        """The input pixels the box lies over, (x0, y0, x1, y1) with x1, y1 exclusive."""
        return (
            self.x // scale,
            self.y // scale,
            -(-(self.x + self.width) // scale),
            -(-(self.y + self.height) // scale),
        )


def parse_box(text: str) -> Box:
    """``"X,Y,W,H"`` (output pixels) as a :class:`Box`; an :class:`ExplainError` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ExplainError(f"box must be X,Y,W,H in output pixels (four integers), not {text!r}")
    return Box(*values)


@dataclass
class Attribution:
    """The local attribution map of one output box, and what it says.

    ``map`` is (H, W) float64 over the *input* image: each pixel's share of the change of the
    box's feature from the blurred baseline to the input, summed over its colour channels
    (signed). Its sum is ``feature - baseline_feature`` up to :attr:`completeness_error`.
    """

    map: np.ndarray
    box: Box
    scale: int
    steps: int
    sigma: float
    feature: float
    baseline_feature: float
    diffusion_index: float
    outside_share: float
    region: tuple[int, int, int, int]  # the input window the model was run on (x0, y0, x1, y1)
    seconds: float = 0.0
    model: str = ""

    @property
    def input_box(self) -> tuple[int, int, int, int]:
        """The box's own input area, (x0, y0, x1, y1), x1 and y1 exclusive."""
        return self.box.input_footprint(self.scale)

    @property
    def completeness_error(self) -> float:
        """``|sum(map) - (feature - baseline_feature)|`` relative to ``|feature - baseline_feature|``."""
        change = self.feature - self.baseline_feature
        return abs(float(self.map.sum()) - change) / max(abs(change), 1e-12)

    def to_json(self) -> dict:
        """The numbers, without the map (for the REST API and ``--json``)."""
        x0, y0, x1, y1 = self.input_box
        rx0, ry0, rx1, ry1 = self.region
        return {
            "model": self.model,
            "scale": self.scale,
            "box": {"x": self.box.x, "y": self.box.y, "width": self.box.width, "height": self.box.height},
            "input_box": {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0},
            "region": {"x": rx0, "y": ry0, "width": rx1 - rx0, "height": ry1 - ry0},
            "steps": self.steps,
            "sigma": self.sigma,
            "diffusion_index": self.diffusion_index,
            "outside_share": self.outside_share,
            "feature": self.feature,
            "baseline_feature": self.baseline_feature,
            "completeness_error": self.completeness_error,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------- the numbers


def gini(values: np.ndarray) -> float:
    """The Gini coefficient of non-negative ``values``: ``sum_ij |v_i - v_j| / (2 n^2 mean(v))``,
    computed from the sorted values as ``sum_i (2i - n - 1) v_(i) / (n sum v)`` (i from 1).
    0 when all are equal, ``1 - 1/n`` when one value holds everything; 0 for all zeros."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n = v.size
    total = v.sum()
    if n == 0 or total <= 0:
        return 0.0
    index = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * index - n - 1) * v) / (n * total))


def diffusion_index(attribution: np.ndarray) -> float:
    """The paper's Diffusion Index of an attribution map: ``(1 - gini(|map|)) * 100``."""
    return (1.0 - gini(np.abs(attribution))) * 100.0


def _outside_share(attribution: np.ndarray, inside: tuple[int, int, int, int]) -> float:
    magnitude = np.abs(attribution)
    total = magnitude.sum()
    if total <= 0:
        return 0.0
    x0, y0, x1, y1 = inside
    return float(1.0 - magnitude[y0:y1, x0:x1].sum() / total)


# --------------------------------------------------------------------------- the path


def _gaussian_taps(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if sigma <= 0:
        taps = torch.zeros(2 * radius + 1, dtype=torch.float64)
        taps[radius] = 1.0
    else:
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        taps = torch.exp(-(x * x) / (2 * sigma * sigma))
        taps /= taps.sum()
    return taps.to(dtype=dtype, device=device)


def _blur(image: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    """(1, C, H, W) blurred by a separable Gaussian of ``sigma`` (edges replicated)."""
    if sigma <= 0:
        return image
    c = image.shape[1]
    taps = _gaussian_taps(sigma, radius, image.dtype, image.device)
    x = F.pad(image, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


# --------------------------------------------------------------------------- the model


def _colour_forward(model: nn.Module, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` on batches of the image's own channels, differentiably: the very channel
    adaptation upscaling runs (:func:`superres.inference.channels.adapt_channels_tensor`)."""
    adapted = adapt_channels_tensor(model, channels)

    def forward(x: torch.Tensor) -> torch.Tensor:
        try:
            return adapted(x)
        except SuperresError as exc:  # a channel count no adapter converts
            raise ExplainError(str(exc)) from None

    return forward


def _resolve_model(model, scale: int | None) -> tuple[nn.Module, int, str]:
    from superres.inference.onnx import prepare_for_inference
    from superres.models import get_spec, load_for_scale

    if isinstance(model, nn.Module):
        net_scale = model_contract(model).scale or scale
        if net_scale is None:
            raise ExplainError("pass scale= for a model without a 'scale' attribute")
        if scale is not None and net_scale != scale:
            raise ExplainError(f"the model is x{net_scale}, not x{scale}")
        name = getattr(model, "superres_arch", type(model).__name__)
        return prepare_for_inference(model), int(net_scale), str(name)
    reference = str(model)
    scale = 4 if scale is None else scale
    net = load_for_scale(reference, scale)
    try:
        name = get_spec(reference).name
    except KeyError:
        from pathlib import Path

        name = Path(reference).stem
    return prepare_for_inference(net), scale, name


def _as_planes(image) -> np.ndarray:
    """Colour planes (C, H, W) float32 in [0, 1], C = 1 or 3: what upscaling feeds the model
    (:func:`superres.inference.channels.model_planes`; alpha goes to bicubic, never the model)."""
    try:
        return model_planes(image)[0]
    except (TypeError, ValueError) as exc:
        raise ExplainError(f"cannot explain this image: {exc}") from None


def _check_box(box: Box, height: int, width: int, scale: int) -> None:
    out_w, out_h = width * scale, height * scale
    if box.width < 2 or box.height < 2:
        raise ExplainError(f"box {box} is too small: the feature is a gradient, so it needs at least 2x2 output pixels")
    if box.x < 0 or box.y < 0 or box.x + box.width > out_w or box.y + box.height > out_h:
        raise ExplainError(f"box {box} (X,Y,W,H) is not inside the {out_w}x{out_h} output of this {width}x{height} image at x{scale}")


def _feature(out: torch.Tensor) -> torch.Tensor:
    """Sum of gradient magnitudes over (B, C, h, w) boxes, per batch item: (B,)."""
    dy = out[:, :, 1:, :-1] - out[:, :, :-1, :-1]
    dx = out[:, :, :-1, 1:] - out[:, :, :-1, :-1]
    magnitude = torch.sqrt(dx * dx + dy * dy + _EPS * _EPS) - _EPS
    return magnitude.flatten(1).sum(dim=1)


def _activation_bytes(forward, channels: int, device: torch.device) -> tuple[float, float, float]:
    """(saved, largest, output): bytes per input pixel that autograd keeps for the backward
    pass, of the largest activation and of the output, measured on a probe window of the
    model's forward with gradients."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = max(saved.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    for probe in (32, 64):  # a model with a minimum input size (several downsamplings) gets a larger probe
        saved.clear()
        x = torch.rand(1, channels, probe, probe, device=device, requires_grad=True)
        try:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = forward(x)
                _feature(out)  # its differences and magnitudes are kept too: 16 output pixels per input pixel at x4
            break
        except RuntimeError as exc:
            failure = exc
    else:
        raise ExplainError(f"cannot plan the explanation's memory: the model does not run on a {probe}x{probe} probe ({failure})")
    largest = max(out.numel(), x.numel()) * 4
    for tensor in saved.values():
        largest = max(largest, tensor)
    return sum(saved.values()) / probe**2, largest / probe**2, out.numel() * 4 / probe**2


def plan_memory(
    forward, channels: int, image_size: tuple[int, int], region: tuple[int, int, int, int], batch: int, device: torch.device,
    probe: tuple[float, float, float] | None = None,
) -> int:
    """Peak bytes an explanation holds: per path point of a batch, what autograd keeps for the
    backward pass over the ``region`` window (measured per pixel on a probe) and three of its
    largest activation (the gradient flowing back beside it); plus the whole image's blurred
    copies, the float64 attribution and the map. Measured against real peaks in
    tests/test_explain_memory.py. ``probe``: that measurement, when already taken."""
    saved, largest, output = probe or _activation_bytes(forward, channels, device)
    x0, y0, x1, y1 = region
    window = (x1 - x0) * (y1 - y0)
    height, width = image_size
    whole = height * width
    # Beyond what autograd saves: about 24 float32 copies of the output (the box feature's
    # differences, its backward, the colour conversion) and 3 of the largest activation,
    # then 15% for the allocator; fitted to measured peaks, SwiftRep and ESPCN x4 (CPU).
    per_point = _MEASURED_MARGIN * (saved + 3 * largest + 24 * output)
    return int(batch * window * per_point + whole * channels * 4 * 4 + window * channels * 8 * 2 + whole * 8 * 3)


def _check_plan(needed: int, limit: int, box: Box, region, scale: int) -> None:
    if needed <= limit:
        return
    from superres.device import format_bytes

    x0, y0, x1, y1 = region
    share = max(0.0, min(1.0, 0.9 * (limit / needed) ** 0.5))  # 0.9: the receptive margin around a smaller box
    side_w, side_h = max(2, int(box.width * share)), max(2, int(box.height * share))
    raise ExplainError(
        f"explaining box {box} runs the model with gradients on an input window of {x1 - x0}x{y1 - y0} px, "
        f"about {format_bytes(needed)} of memory, over the limit of {format_bytes(limit)} (SUPERRES_MEMORY_LIMIT sets it): "
        f"explain a smaller box (about {side_w}x{side_h} output px or less) or a crop of the image"
    )


def _window(footprint, margin: int, height: int, width: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = footprint
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def _box_output(forward, image: torch.Tensor, region, box: Box, scale: int) -> torch.Tensor:
    x0, y0, x1, y1 = region
    with torch.no_grad():
        out = forward(image[..., y0:y1, x0:x1])
    top, left = box.y - y0 * scale, box.x - x0 * scale
    return out[..., top : top + box.height, left : left + box.width]


def _choose_region(forward, model, channels, image, box: Box, scale: int, crop: bool, check=None) -> tuple[int, int, int, int]:
    """The input window to run the model on: the box's footprint grown by the receptive
    radius, if the model is local there (checked against a window twice as wide); else all.
    ``check(region)`` is called on a window before the model runs on it (the memory plan)."""
    height, width = image.shape[-2:]
    whole = (0, 0, width, height)
    check = check or (lambda region: None)
    if not crop:
        check(whole)
        return whole
    radius = receptive_radius(model, channels)
    if radius is None:
        check(whole)
        return whole
    # A luma model's chroma comes from bicubic, which reaches 2 input pixels.
    margin = max(radius, 2) + 1
    footprint = box.input_footprint(scale)
    region = _window(footprint, margin, height, width)
    check(region)
    if region == whole:
        return whole
    wider = _window(footprint, 2 * margin + 8, height, width)
    near = _box_output(forward, image, region, box, scale)
    far = _box_output(forward, image, wider, box, scale)
    if float((near - far).abs().max()) > _LOCALITY_TOLERANCE:
        check(whole)
        return whole  # something in the forward sees further than its layers say
    return region


def _as_box(box: Box | str | tuple[int, int, int, int]) -> Box:
    if isinstance(box, str):
        return parse_box(box)
    if isinstance(box, Box):
        return box
    values = list(box)
    if len(values) != 4:
        raise ExplainError(f"box must be (X, Y, W, H) in output pixels, not {box!r}")
    return Box(*(int(v) for v in values))


def _check_path_options(steps: int, sigma: float) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
        raise ExplainError(f"steps must be an integer from 1 to 1000, not {steps!r}")
    if not (isinstance(sigma, (int, float)) and 0 < sigma <= 20):
        raise ExplainError(f"sigma must be a blur in input pixels, above 0 and at most 20, not {sigma!r}")


def _batch_size(region, plan: Callable[[int], int], limit: int) -> int:
    """Path points per forward/backward pass: up to 8 while a batch stays within
    ``_BATCH_PIXELS``, halved while ``plan(batch)`` (bytes) is over ``limit``."""
    x0, y0, x1, y1 = region
    batch = max(1, min(8, _BATCH_PIXELS // max(1, (y1 - y0) * (x1 - x0))))
    while batch > 1 and plan(batch) > limit:
        batch //= 2
    return batch


def _plan_window(
    forward, net: nn.Module, channels: int, full: torch.Tensor, box: Box, scale: int, crop: bool, device: torch.device,
    memory_limit: int | None,
) -> tuple[tuple[int, int, int, int], int]:
    """The input window to run the model on (:func:`_choose_region`) and the path points per
    pass, planned (:func:`plan_memory`) to stay within ``memory_limit`` (None: the default
    budget); an :class:`ExplainError` when one path point cannot."""
    if memory_limit is None:
        from superres.device import memory_budget

        memory_limit = memory_budget(cap=EXPLAIN_MEMORY_CAP)
    image_channels, (height, width) = full.shape[1], full.shape[-2:]
    probe = _activation_bytes(forward, image_channels, device)  # once: every plan below uses it

    def plan(region, batch: int) -> int:
        return plan_memory(forward, image_channels, (height, width), region, batch, device, probe)

    def check(region) -> None:
        # One path point per batch when a batch of them is over the limit; refused when one is.
        _check_plan(plan(region, 1), memory_limit, box, region, scale)

    region = _choose_region(forward, net, channels, full, box, scale, crop, check)
    return region, _batch_size(region, lambda points: plan(region, points), memory_limit)


class _Path:
    """The progressive-blurring path from the baseline (``sigma``) to the input (0) as the
    model sees it, cut to the ``region`` window, and the box's feature of the model's output.

    The path is blurred on the whole image, then cut to the window: a pixel at the window's
    edge is blurred from its real neighbours, as it is on the whole image."""

    def __init__(self, full: torch.Tensor, forward, region, box: Box, scale: int, sigma: float, steps: int):
        self.full, self.forward, self.region, self.box = full, forward, region, box
        x0, y0, _, _ = region
        self.top, self.left = box.y - y0 * scale, box.x - x0 * scale
        self.radius = max(1, math.ceil(3 * sigma))
        self.nodes = [sigma * (1 - k / steps) for k in range(steps + 1)]  # from the baseline to the input
        self.middles = [sigma * (1 - (k + 0.5) / steps) for k in range(steps)]

    def cut(self, image: torch.Tensor) -> torch.Tensor:
        x0, y0, x1, y1 = self.region
        return image[..., y0:y1, x0:x1]

    def image(self, s: float) -> torch.Tensor:
        return self.cut(_blur(self.full, s, self.radius))

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        return _feature(out[..., self.top : self.top + self.box.height, self.left : self.left + self.box.width])


def _integrate(path: _Path, batch: int, progress: bool | Callable[[int, int], object]) -> torch.Tensor:
    """The attribution over the window (float64, per colour channel): the gradient at each
    step's midpoint times the path's exact change over that step, so the sum telescopes to
    the change of the feature. ``progress`` as :func:`explain` takes it."""
    steps = len(path.middles)
    attribution = torch.zeros_like(path.cut(path.full), dtype=torch.float64)
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=steps, unit="step", desc=f"explaining {path.box}", leave=False)
    previous = path.image(path.nodes[0])
    done = 0
    for first in range(0, steps, batch):
        ks = range(first, min(steps, first + batch))
        points = torch.cat([path.image(path.middles[k]) for k in ks]).requires_grad_(True)
        (grad,) = torch.autograd.grad(path.feature(points).sum(), points)
        for i, k in enumerate(ks):
            node = path.image(path.nodes[k + 1])
            attribution += grad[i : i + 1].double() * (node - previous).double()
            previous = node
        done += len(ks)
        if bar is not None:
            bar.update(len(ks))
        elif callable(progress):
            progress(done, steps)
    if bar is not None:
        bar.close()
    return attribution


def explain(
    model,
    image,
    box: Box | str | tuple[int, int, int, int],
    *,
    scale: int | None = None,
    steps: int = DEFAULT_STEPS,
    sigma: float = DEFAULT_SIGMA,
    crop: bool = True,
    device: str | torch.device = "cpu",
    progress: bool | Callable[[int, int], object] = False,
    memory_limit: int | None = None,
) -> Attribution:
    """The Local Attribution Map of output ``box`` (X, Y, W, H in output pixels) over ``image``.

    ``model``: an ``nn.Module`` (with ``scale``) or what :func:`superres.load` accepts (a
    registry name with shipped weights, or a checkpoint file; ``scale`` defaults to 4).
    ``image``: PIL, numpy (HxW or HxWxC; uint8, uint16 or float in [0, 1]), a (C, H, W)
    tensor or an :class:`~superres.imaging.io.ImageData`, taken as :meth:`superres.Upscaler.upscale`
    takes it (16-bit kept; alpha never reaches the model, and the colour under transparent
    pixels is filled as upscaling fills it). ``steps``: path points (each one forward and
    backward pass); ``sigma``: the baseline's blur, in input pixels. ``crop``: run the model
    only on the input window that can reach the box, when the model is local (see the
    module's docstring); False runs it on the whole image.
    ``progress``: True for a tqdm bar, or a callable ``progress(done, total)``; a callable
    may raise (:class:`ExplainCancelled`) to stop between path steps.

    The peak memory is planned before the model runs (:func:`plan_memory`: the window's
    activations kept for the backward pass, per path point of a batch) and a plan over
    ``memory_limit`` bytes is refused with one line naming the box, the memory and the
    limit. The default limit is :data:`EXPLAIN_MEMORY_CAP` or half the available RAM,
    whichever is smaller, or ``SUPERRES_MEMORY_LIMIT`` when set.
    """
    started = time.perf_counter()
    box = _as_box(box)
    _check_path_options(steps, sigma)
    net, scale, name = _resolve_model(model, scale)
    from superres.device import resolve_device

    device = resolve_device(device)
    net = net.to(device)
    planes = _as_planes(image)
    _, height, width = planes.shape
    _check_box(box, height, width, scale)
    channels = input_channels(net)
    forward = _colour_forward(net, channels)
    full = torch.from_numpy(planes)[None].to(device)  # (1, C, H, W)
    region, batch = _plan_window(forward, net, channels, full, box, scale, crop, device, memory_limit)
    path = _Path(full, forward, region, box, scale, sigma, steps)
    attribution = _integrate(path, batch, progress)
    with torch.no_grad():
        ends = path.feature(torch.cat([path.image(path.nodes[0]), path.image(0.0)]))
    x0, y0, x1, y1 = region
    lam = np.zeros((height, width), dtype=np.float64)
    lam[y0:y1, x0:x1] = attribution.sum(dim=1)[0].cpu().numpy()
    return Attribution(
        map=lam,
        box=box,
        scale=scale,
        steps=steps,
        sigma=float(sigma),
        feature=float(ends[1]),
        baseline_feature=float(ends[0]),
        diffusion_index=diffusion_index(lam),
        outside_share=_outside_share(lam, box.input_footprint(scale)),
        region=region,
        seconds=time.perf_counter() - started,
        model=name,
    )


# --------------------------------------------------------------------------- the picture


def heatmap_overlay(
    image, attribution: Attribution | np.ndarray, *, box: tuple[int, int, int, int] | None = None, decades: float = 3.0, outline: bool = True
) -> np.ndarray:
    """The attribution map over the input, as (H, W, 3) uint8 RGB.

    The input is shown in grey, dimmed; ``|map|`` is laid over it in matplotlib's ``inferno``
    colours on a log scale spanning ``decades`` powers of ten below its maximum (the weak,
    wide tail is what the Diffusion Index measures, and a linear scale hides it), opaque where
    the attribution is strongest and absent where it is zero. The box's own input area
    (``box``, or the Attribution's) is outlined in cyan just outside it, over the ring of
    pixels next to it; ``outline=False`` leaves them visible (to draw the box another way).
    """
    colormaps = require("matplotlib", extra="plot", purpose="the attribution heatmap").colormaps

    lam = attribution.map if isinstance(attribution, Attribution) else np.asarray(attribution, dtype=np.float64)
    if box is None and isinstance(attribution, Attribution):
        box = attribution.input_box
    planes = _as_planes(image)
    if planes.shape[1:] != lam.shape:
        raise ExplainError(f"the map is {lam.shape[1]}x{lam.shape[0]} but the image is {planes.shape[2]}x{planes.shape[1]}")
    grey = planes.mean(axis=0) if planes.shape[0] == 1 else (0.299 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2])
    magnitude = np.abs(lam)
    peak = magnitude.max()
    heat = np.zeros_like(magnitude)
    if peak > 0:
        nonzero = magnitude > 0
        heat[nonzero] = np.clip(1.0 + np.log10(magnitude[nonzero] / peak) / decades, 0.0, 1.0)
    colours = colormaps["inferno"](0.15 + 0.85 * heat)[..., :3]
    weight = np.where(heat > 0, 0.35 + 0.6 * heat, 0.0)[..., None]
    base = (0.1 + 0.5 * np.clip(grey, 0, 1))[..., None].repeat(3, axis=2)
    out = (1 - weight) * base + weight * colours
    if box is not None and outline:
        _outline(out, box, np.array([0.0, 0.9, 1.0]))
    return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)


def _outline(pixels: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray) -> None:
    """Draw the one-pixel frame just outside (x0, y0, x1, y1) (exclusive ends), clipped to the image."""
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = box
    left, top, right, bottom = x0 - 1, y0 - 1, x1, y1
    cols = slice(max(left, 0), min(right, w - 1) + 1)
    rows = slice(max(top, 0), min(bottom, h - 1) + 1)
    for y in (top, bottom):
        if 0 <= y < h:
            pixels[y, cols] = colour
    for x in (left, right):
        if 0 <= x < w:
            pixels[rows, x] = colour
