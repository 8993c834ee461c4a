"""What a model takes and gives, as the model declares it: its :class:`Contract`.

Every architecture sets ``self.contract`` in its constructor, so nobody has to guess a
model's input from its layers (RRDBNet's first convolution sees 12 or 48 channels at x2 and
x1, after its pixel-unshuffle, but the model takes 3). Inference, training, the model
summary and ONNX export all read it through :func:`model_contract`.

The convention of the luma models (``channels=1``, trained on Y as SRCNN, FSRCNN and ESPCN
were in their papers) lives here too: Y of MATLAB's BT.601 YCbCr (16-235) divided by 255.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from superres.imaging.color import rgb_to_y_torch

__all__ = ["Contract", "LUMA_INPUT", "RGB_INPUT", "input_channels", "luma_from_model", "luma_to_model", "model_contract", "rgb_to_luma_input"]

#: What a luma model's input is, in words (ONNX metadata, docs).
LUMA_INPUT = "Y / 255 of BT.601 YCbCr (Y in 16-235, MATLAB rgb2ycbcr); upscale Cb and Cr with bicubic"
#: What an RGB model's input is, in words.
RGB_INPUT = "RGB in [0, 1]"


@dataclass(frozen=True)
class Contract:
    """A model's images: ``channels`` in and out (1: Y, 3: RGB; a model may be built for
    others, which no adapter converts to), and ``size_multiple``, the
    multiple of the sides that the network computes on (it pads other sizes itself and
    crops its output, so any size may be passed; tiles of this multiple pad nothing)."""

    channels: int = 3
    size_multiple: int = 1

    def __post_init__(self) -> None:
        if self.channels < 1 or self.size_multiple < 1:
            raise ValueError(f"channels and size_multiple must be at least 1, got {self.channels} and {self.size_multiple}")

    @property
    def colour_space(self) -> str | None:
        """"Y" for a luma model, "RGB" for a colour one, None for another channel count."""
        return {1: "Y", 3: "RGB"}.get(self.channels)

    @property
    def description(self) -> str | None:
        """What the model's input is, in words (None for a channel count other than 1 or 3)."""
        return {1: LUMA_INPUT, 3: RGB_INPUT}.get(self.channels)


def model_contract(model: nn.Module) -> Contract:
    """The contract ``model`` declares; a module that declares none (one of the user's own)
    is taken to map RGB to RGB."""
    declared = getattr(model, "contract", None)
    return declared if isinstance(declared, Contract) else Contract()


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
