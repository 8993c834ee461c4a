"""Running a model on images with another number of channels than it was trained on.

The one place where this is decided, for the inference API and the paper protocol alike:

- a grey image on an RGB model goes in as three equal channels and comes out averaged;
- an RGB image on a luma model (``channels=1``, trained on Y as SRCNN, FSRCNN and ESPCN
  were in their papers) is split into YCbCr (MATLAB's BT.601): the model upscales Y, MATLAB
  bicubic upscales Cb and Cr, and the three are joined back to RGB. Y goes in on the
  scale the model was trained on (:mod:`superres.models.contract`).

How many channels a model takes is what it declares (:func:`superres.models.model_contract`);
this module only adapts images to it.
"""

from __future__ import annotations

import numpy as np
import torch

from superres.errors import SuperresError
from superres.imaging.color import rgb_to_ycbcr_torch, ycbcr_to_rgb_torch
from superres.imaging.resize import imresize_torch
from superres.inference.tiling import Runner
from superres.models.contract import input_channels as model_channels  # noqa: F401  (its former home; kept importable)
from superres.models.contract import luma_from_model, luma_to_model

__all__ = ["adapt_channels"]


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
    y = torch.from_numpy(run(luma_to_model(ycbcr[:, :1]).numpy()))  # (B, 1, sh, sw), as the model takes Y
    cbcr = imresize_torch(ycbcr[:, 1:], size=tuple(y.shape[2:]))  # (B, 2, sh, sw)
    return ycbcr_to_rgb_torch(torch.cat([luma_from_model(y), cbcr], dim=1)).numpy()
