"""Running a model on images with another number of channels than it was trained on.

The one place where this is decided, for the inference API and the paper protocol alike:

- a grey image on an RGB model goes in as three equal channels and comes out averaged;
- an RGB image on a luma model (``channels=1``, trained on Y as SRCNN, FSRCNN and ESPCN
  were in their papers) is split into YCbCr (MATLAB's BT.601): the model upscales Y, MATLAB
  bicubic upscales Cb and Cr, and the three are joined back to RGB. Y goes in on the
  scale the model was trained on, Y / 255 with Y in [16, 235].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from superres.errors import SuperresError
from superres.imaging.color import rgb_to_ycbcr_torch, ycbcr_to_rgb_torch
from superres.imaging.resize import imresize_torch
from superres.inference.tiling import Runner

__all__ = ["adapt_channels", "model_channels"]


def model_channels(model: nn.Module) -> int:
    """The colour channels ``model`` takes: its ``channels`` attribute, else its first
    convolution's input channels, else 3."""
    channels = getattr(model, "channels", None)
    if isinstance(channels, int):
        return channels
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            return module.in_channels
    return 3


def adapt_channels(run: Runner, channels: int) -> Runner:
    """``run`` (a model that takes ``channels``-channel batches) for batches of 1 or 3 channels."""

    def adapted(batch: np.ndarray) -> np.ndarray:
        c = batch.shape[1]
        if c == channels:
            return run(batch)
        if c == 1 and channels == 3:
            return run(np.repeat(batch, 3, axis=1)).mean(axis=1, keepdims=True)
        if c == 3 and channels == 1:
            return _luma_then_bicubic_chroma(run, batch)
        raise SuperresError(f"the model takes {channels}-channel images, not {c}-channel ones")

    return adapted


def _luma_then_bicubic_chroma(run: Runner, batch: np.ndarray) -> np.ndarray:
    # In torch and in the batch's float32 throughout: at x4 the float64 numpy version of this
    # split and join took nearly as long as ESPCN's network and held the Upscaler to 13 MP/s
    # (21 now; python benchmarks/inference_speed.py).
    ycbcr = rgb_to_ycbcr_torch(torch.from_numpy(batch))  # (B, 3, h, w) on 0-255
    y = torch.from_numpy(run((ycbcr[:, :1] / 255.0).numpy()))  # (B, 1, sh, sw), Y / 255
    cbcr = imresize_torch(ycbcr[:, 1:], size=tuple(y.shape[2:]))  # (B, 2, sh, sw)
    return ycbcr_to_rgb_torch(torch.cat([y * 255.0, cbcr], dim=1)).numpy()
