"""What a model takes and gives, as the model declares it: its :class:`Contract`, and the
:class:`SuperresModel` protocol every architecture follows.

Every architecture sets ``self.contract`` in its constructor, so nobody has to guess a
model's input from its layers (RRDBNet's first convolution sees 12 or 48 channels at x2 and
x1, after its pixel-unshuffle, but the model takes 3). Inference, training, the model
summary, explanations and ONNX export all read it through :func:`model_contract`; what a
model can do beyond running (fold into its inference form, adopt another form's weights)
is a protocol here too, checked with ``isinstance`` rather than guessed with ``hasattr``.

The convention of the luma models (``channels=1``, trained on Y as SRCNN, FSRCNN and ESPCN
were in their papers) lives here too: Y of MATLAB's BT.601 YCbCr (16-235) divided by 255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from superres.imaging.color import rgb_to_y_torch
from superres.models.probe import leaves, probe

__all__ = [
    "AdoptsState", "Contract", "Fusable", "LUMA_INPUT", "RGB_INPUT", "SuperresModel", "fuse", "input_channels", "luma_from_model",
    "luma_to_model", "model_contract", "receptive_radius", "rgb_to_luma_input", "trace_receptive_radius",
]

#: What a luma model's input is, in words (ONNX metadata, docs).
LUMA_INPUT = "Y / 255 of BT.601 YCbCr (Y in 16-235, MATLAB rgb2ycbcr); upscale Cb and Cr with bicubic"
#: What an RGB model's input is, in words.
RGB_INPUT = "RGB in [0, 1]"


@dataclass(frozen=True)
class Contract:
    """A model's images: ``channels`` in and out (1: Y, 3: RGB; a model may be built for
    others, which no adapter converts to); ``size_multiple``, the multiple of the sides that
    the network computes on (it pads other sizes itself and crops its output, so any size may
    be passed; tiles of this multiple pad nothing); ``receptive_radius``, how far in input
    pixels an output pixel sees from its own position, where the architecture states it
    exactly (None: not stated; :func:`receptive_radius` then traces it from the layers);
    ``fusable``, whether the model folds into a faster inference form (:class:`Fusable`);
    ``scale``, the model's upscaling factor (:func:`model_contract` fills it from the model)."""

    channels: int = 3
    size_multiple: int = 1
    receptive_radius: int | None = None
    fusable: bool = False
    scale: int | None = None

    def __post_init__(self) -> None:
        if self.channels < 1 or self.size_multiple < 1:
            raise ValueError(f"channels and size_multiple must be at least 1, got {self.channels} and {self.size_multiple}")
        if self.receptive_radius is not None and self.receptive_radius < 0:
            raise ValueError(f"receptive_radius must be None or at least 0, got {self.receptive_radius}")

    @property
    def colour_space(self) -> str | None:
        """"Y" for a luma model, "RGB" for a colour one, None for another channel count."""
        return {1: "Y", 3: "RGB"}.get(self.channels)

    @property
    def description(self) -> str | None:
        """What the model's input is, in words (None for a channel count other than 1 or 3)."""
        return {1: LUMA_INPUT, 3: RGB_INPUT}.get(self.channels)


@runtime_checkable
class SuperresModel(Protocol):
    """What every superres architecture is: an ``nn.Module`` mapping (B, C, H, W) in [0, 1]
    to (B, C, scale*H, scale*W), C as its ``contract`` declares."""

    scale: int
    contract: Contract

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Fusable(Protocol):
    """A model with a training form and a faster inference form of the same function
    (SwiftRep's re-parameterised blocks): :func:`fuse` folds it, once."""

    @property
    def reparameterized(self) -> bool: ...

    def reparameterize(self) -> object: ...


@runtime_checkable
class AdoptsState(Protocol):
    """A model that starts training from another form's weights (a fused SwiftRep checkpoint
    into training blocks) and gives the layers no checkpoint filled a start of its own."""

    def adopt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def init_unmatched(self, names: list[str]) -> None: ...


def model_contract(model: nn.Module) -> Contract:
    """The contract ``model`` declares, with its scale; a module that declares none (one of
    the user's own) is taken to map RGB to RGB, and to be fusable if it has ``reparameterize``."""
    declared = getattr(model, "contract", None)
    if not isinstance(declared, Contract):
        declared = Contract(fusable=callable(getattr(model, "reparameterize", None)))
    scale = getattr(model, "scale", None)
    if declared.scale is None and isinstance(scale, int):
        declared = replace(declared, scale=scale)
    return declared


def fuse(model: nn.Module) -> bool:
    """Fold a fusable ``model`` (:class:`Fusable`) into its inference form, in place; whether
    it was folded now. One that is not fusable, or already folded, is left as it is."""
    if not model_contract(model).fusable or getattr(model, "reparameterized", False):
        return False
    model.reparameterize()  # type: ignore[operator]
    return True


def input_channels(model: nn.Module) -> int:
    """The colour channels ``model`` takes (and gives): 1 (Y) or 3 (RGB)."""
    return model_contract(model).channels


def luma_to_model(y: torch.Tensor) -> torch.Tensor:
    """Y on MATLAB's 0-255 scale (16-235) as a luma model takes it: Y / 255."""
    return y / 255.0


def luma_from_model(y: torch.Tensor) -> torch.Tensor:
    """A luma model's output back on MATLAB's 0-255 scale: the inverse of :func:`luma_to_model`."""
    return y * 255.0


def rgb_to_luma_input(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] to the (B, 1, H, W) input of a luma model."""
    return luma_to_model(rgb_to_y_torch(rgb))


# Leaves that act on each pixel (or each channel) alone: no spatial reach.
_POINTWISE = (
    nn.ReLU, nn.PReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
    nn.ReLU6, nn.Mish, nn.Identity, nn.Dropout, nn.Dropout2d, nn.BatchNorm2d, nn.InstanceNorm2d,
)


def receptive_radius(model: nn.Module, channels: int | None = None) -> int | None:
    """How far, in input pixels, an output pixel of ``model`` can see from its own position:
    what its contract states, else :func:`trace_receptive_radius`; None: unbounded."""
    declared = model_contract(model).receptive_radius
    return declared if declared is not None else trace_receptive_radius(model, channels)


def trace_receptive_radius(model: nn.Module, channels: int | None = None) -> int | None:
    """How far, in input pixels, an output pixel can see from its own position, traced from
    the model's layers; None when the model has a layer this cannot bound (pooling,
    attention, a parameter-free resampler such as bicubic), which then counts as global.

    A trial run records every leaf module in the order it runs: a convolution adds its
    kernel's reach (scaled to input pixels by the resolution it runs at), a transposed
    convolution its reach over its stride, a pixel shuffle or upsampling one pixel of
    rounding, and pointwise layers nothing. Branches that run side by side are added as if in
    sequence, so this is exact for a chain of layers (ESPCN, FSRCNN, SwiftRep) up to the
    rounding, and an upper bound otherwise. Operations written in a ``forward`` rather than
    as modules are invisible here; :func:`superres.attribution.explain` checks locality by
    running the model on two windows.
    """
    channels = channels or input_channels(model)
    layers = leaves(model)
    if model in layers:
        return None
    calls: list[tuple[nn.Module, int]] = []

    def record(module, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor) and inputs[0].ndim == 4:
            calls.append((module, inputs[0].shape[-1]))

    side = 24
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        probe(model, torch.zeros(1, channels, side, side, device=device), record, layers)
    except Exception:  # a model that cannot run the probe: no bound
        return None
    reach = 0.0
    for module, width_in in calls:
        step = _reach(module, width_in / side)  # width_in / side: this layer's pixels per input pixel
        if step is None:
            return None
        reach += step
    return int(math.ceil(reach))


def _reach(module: nn.Module, resolution: float) -> float | None:
    """Input pixels one leaf adds to the reach; None for a layer this cannot bound."""
    if isinstance(module, nn.Conv2d):
        if module.padding_mode == "circular":  # wraps around: the far edge is a neighbour
            return None
        k = max((module.kernel_size[i] - 1) * module.dilation[i] for i in range(2))
        return (k / 2) / resolution
    if isinstance(module, nn.ConvTranspose2d):
        k = max((module.kernel_size[i] - 1) * module.dilation[i] for i in range(2))
        p = max(module.padding)
        return (max(p, k - p) / min(module.stride) + 1) / resolution
    if isinstance(module, (nn.PixelShuffle, nn.PixelUnshuffle, nn.Upsample)):
        return 1 / resolution
    if isinstance(module, _POINTWISE):
        return 0.0
    return None
