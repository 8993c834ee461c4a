"""Any output size: a factor that is not a model's (x1.5, x2.8) or a target width and height.

Models are trained for whole factors (2, 3, 4). To reach another size, the model whose scale
is the requested factor runs when one exists; otherwise the model of the next whole scale
above, and its output is brought down to the size by an antialiased MATLAB bicubic resize.
That choice was measured, not guessed (``python benchmarks/fractional_scales.py``, Set14,
paper protocol, SwiftRep; README "Any output size"): at x1.5 it beats bicubic by 3.3 dB,
and at x2.5 and x3 it beats the model below plus a bicubic upscale by 0.25-0.3 dB, within
0.02 dB of a model trained for x3 itself. A factor above every scale a model has (x5 with
models up to x4) runs its largest model and MATLAB bicubic makes up the rest.

A target that is not the image's aspect ratio is fitted one of three ways (``fit``):

- ``cover`` (the default): scaled until it covers the box, the overflow cut off evenly from
  both sides; exactly the asked size, aspect kept, a few edge pixels lost;
- ``contain``: scaled until it fits inside the box; aspect kept, nothing lost, but one side
  is shorter than asked (``--width``/``--height`` alone always fit both ways);
- ``stretch``: each side scaled on its own to exactly the asked size; the aspect changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from superres.device import format_bytes, memory_budget
from superres.errors import SuperresError
from superres.imaging.resize import imresize_torch
from superres.options import FITS

__all__ = [
    "FITS", "OutputSize", "OutputTooLarge", "SizePlan", "check_output_memory", "choose_model_scale", "fit_planes", "output_memory", "parse_size",
]

# Side of the largest result, to refuse a typo (--width 200000) before any work.
_MAX_SIDE = 1 << 16


def parse_size(text: str) -> tuple[int, int]:
    """(width, height) from "1920x1080" (also "1920X1080", "1920*1080")."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX*×]\s*(\d+)\s*", str(text))
    if not match:
        raise SuperresError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 1920x1080)")
    return int(match[1]), int(match[2])


class OutputTooLarge(SuperresError):
    """A result whose planned memory is over the budget (:func:`check_output_memory`); one line."""


@dataclass(frozen=True)
class SizePlan:
    """How one image reaches its size: the model's output is resized to ``resized``
    (height, width), then ``crop`` (top, left, height, width) is cut from it."""

    factor: float  # the larger of the two factors the model's output must cover
    resized: tuple[int, int]
    crop: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """The final (height, width)."""
        return self.crop[2], self.crop[3]


@dataclass(frozen=True)
class OutputSize:
    """The size a result should have: ``scale`` (any factor above 1), or ``width`` and/or
    ``height`` in pixels (one alone keeps the aspect ratio; both are fitted by ``fit``,
    one of :data:`FITS`)."""

    scale: float | None = None
    width: int | None = None
    height: int | None = None
    fit: str = "cover"

    def __post_init__(self):
        if self.fit not in FITS:
            raise SuperresError(f"unknown fit {self.fit!r} (use {', '.join(FITS)})")
        if self.scale is not None:
            if self.width is not None or self.height is not None:
                raise SuperresError("give a scale or a size (width, height), not both")
            if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
                raise SuperresError(f"scale must be a number above 1, got {self.scale!r}")
            if not 1 < self.scale <= 64:
                raise SuperresError(f"scale must be above 1 (and at most 64), got {self.scale:g}")
        elif self.width is None and self.height is None:
            raise SuperresError("give a scale, a width or a height")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_SIDE):
                raise SuperresError(f"{name} must be a whole number of pixels from 1 to {_MAX_SIDE}, got {value!r}")

    @property
    def label(self) -> str:
        """A short name for file names and logs: ``x1.5``, ``1920x1080``, ``w2000``, ``h1080``."""
        if self.scale is not None:
            return f"x{self.scale:g}"
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"w{self.width}" if self.width is not None else f"h{self.height}"

    def plan(self, height: int, width: int) -> SizePlan:
        """The :class:`SizePlan` for an input of ``height`` x ``width`` pixels; a one-line
        :class:`SuperresError` when the result would be no larger than the input on either
        side: superres enlarges, as ``scale`` (above 1) says, whichever way the size is given."""
        plan = self._plan(height, width)
        if plan.factor <= 1:
            out_h, out_w = plan.size
            raise SuperresError(
                f"{self.label} would make this {width}x{height} image {out_w}x{out_h}, no larger (x{plan.factor:.3g}): "
                "superres only enlarges; ask for a larger size, or resize it with another tool"
            )
        return plan

    def _plan(self, height: int, width: int) -> SizePlan:
        if self.scale is not None:
            out = (_round(height * self.scale), _round(width * self.scale))
            return SizePlan(float(self.scale), out, (0, 0) + out)
        if self.width is None or self.height is None:
            factor = self.width / width if self.width is not None else self.height / height
            out = (self.height or _round(height * factor), self.width or _round(width * factor))
            return _plain(out, height, width)
        box = (self.height, self.width)
        if self.fit == "stretch":
            return _plain(box, height, width)
        if self.fit == "contain":
            factor = min(self.width / width, self.height / height)
            out = (min(box[0], _round(height * factor)), min(box[1], _round(width * factor)))
            return _plain(out, height, width)
        factor = max(self.width / width, self.height / height)
        resized = (max(box[0], _round(height * factor)), max(box[1], _round(width * factor)))
        top, left = (resized[0] - box[0]) // 2, (resized[1] - box[1]) // 2
        return SizePlan(factor, resized, (top, left) + box)


def _round(x: float) -> int:
    # Halves up, at least 1: Python's round() sends 60.5 to 60 but 61.5 to 62.
    return max(1, math.floor(x + 0.5))


def _plain(out: tuple[int, int], height: int, width: int) -> SizePlan:
    return SizePlan(max(out[0] / height, out[1] / width), out, (0, 0) + out)


def choose_model_scale(factor: float, scales) -> int:
    """The model scale to reach ``factor`` with, from the available ``scales``: ``factor``
    itself when it is one of them, else the smallest above it (the output is then resized
    down), else the largest (the output is then resized up); see the module docstring."""
    scales = sorted(set(int(s) for s in scales))
    if not scales:
        raise SuperresError("no model scales to choose from")
    if abs(factor - round(factor)) < 1e-9 and round(factor) in scales:
        return round(factor)
    above = [s for s in scales if s >= factor]
    return above[0] if above else scales[-1]


def fit_planes(planes: np.ndarray, plan: SizePlan) -> np.ndarray:
    """(C, h, w) or (B, C, h, w) float32 planes (a model's output) resized by MATLAB bicubic,
    antialiased when shrinking, to ``plan.resized`` and cropped to ``plan.crop``."""
    if tuple(planes.shape[-2:]) != plan.resized:
        # In float32 torch (banded matrix products): the numpy reference works in float64 and
        # gathers taps, several times the memory and time on a 4K result.
        planes = imresize_torch(torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)), size=plan.resized).numpy()
    top, left, height, width = plan.crop
    if (top, left, height, width) != (0, 0) + tuple(planes.shape[-2:]):
        planes = np.ascontiguousarray(planes[..., top : top + height, left : left + width])
    return planes


def output_memory(
    out_size: tuple[int, int],
    model_size: tuple[int, int] | None = None,
    *,
    channels: int = 3,
    alpha: bool = False,
    frames: int = 1,
    itemsize: int = 1,
) -> int:
    """Peak bytes of host memory an upscale to ``out_size`` (height, width) holds, planned
    from sizes alone. ``model_size`` is the model's own output when it differs (x1.5 runs
    x2 and resizes). Per frame in flight, float32 planes: 4 of the result at the model's
    scale (its output, the clip, the conversion to samples), or, when a resize follows, 3 of
    the model's output and 5 of the result (each bicubic pass concatenates its bands, so its
    output exists twice); then every frame's result in ``itemsize``-byte samples (an
    animation is encoded whole) and one more for the encoder. The factors are measured
    peaks (docs/OUTPUT_SIZE.md), rounded up: x4 with a model 285 MB measured, 415 MB
    planned; x7.5 to 6000x4500 (bicubic x8 then down) 1.91 GB measured, 2.89 GB planned."""
    planes = channels + (1 if alpha else 0)
    out_pixels = out_size[0] * out_size[1]
    if model_size is None:
        working = 4 * planes * 4 * out_pixels
    else:
        working = 4 * planes * (3 * model_size[0] * model_size[1] + 5 * out_pixels)
    held = (frames + 1) * out_pixels * planes * itemsize
    return working + held


def check_output_memory(in_size: tuple[int, int], out_size: tuple[int, int], needed: int, *, frames: int = 1) -> int:
    """Refuse, before any work, an upscale of an ``in_size`` (height, width) image to
    ``out_size`` whose planned peak memory ``needed`` (:func:`output_memory`) is over
    :func:`superres.device.memory_budget`: one line naming the size, the
    memory and the limit. Returns ``needed``."""
    limit = memory_budget()
    if needed > limit:
        (h, w), (oh, ow) = in_size, out_size
        many = f" x {frames} frames" if frames > 1 else ""
        raise OutputTooLarge(
            f"the result of this {w}x{h} image would be {ow}x{oh}{many} ({_megapixels(oh * ow * frames)}), needing about "
            f"{format_bytes(needed)} of memory, over the limit of {format_bytes(limit)} (half the available memory, or "
            "SUPERRES_MEMORY_LIMIT): ask for a smaller size or scale"
        )
    return needed


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} MP" if pixels >= 1e7 else f"{pixels / 1e6:.2g} MP"
