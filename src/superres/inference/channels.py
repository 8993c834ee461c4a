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

from typing import Callable

import numpy as np
import torch

from superres.errors import SuperresError
from superres.imaging.io import ImageData
from superres.imaging.color import chroma_to_rgb_torch, rgb_from_luma_torch, rgb_to_y_torch
from superres.imaging.resize import imresize_torch
from superres.inference.tiling import Runner
from superres.models.contract import input_channels as model_channels  # noqa: F401  (its former home; kept importable)
from superres.models.contract import luma_from_model, luma_to_model

__all__ = ["adapt_channels", "adapt_channels_tensor", "image_size", "numpy_runner", "tensor_runner"]

#: (B, C, h, w) float32 tensor -> (B, C', s*h, s*w) float32 tensor: a runner's ``forward``.
TensorRunner = Callable[[torch.Tensor], torch.Tensor]


def tensor_runner(run: Runner) -> TensorRunner:
    """A numpy runner (the tiling engine's :data:`~.tiling.Runner`) on float32 CPU tensors."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = np.asarray(run(x.numpy()))
        return torch.from_numpy(out if out.flags.writeable else out.copy())  # torch warns on a read-only array

    return forward


def numpy_runner(forward: TensorRunner) -> Runner:
    """A tensor runner on float32 numpy batches (the tiling engine's :data:`~.tiling.Runner`)."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return forward(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    return run


def adapt_channels(run: Runner, channels: int) -> Runner:
    """``run`` (a model that takes ``channels``-channel batches) for batches of 1 or 3 channels."""
    return numpy_runner(adapt_channels_tensor(tensor_runner(run), channels))


def adapt_channels_tensor(forward: TensorRunner, channels: int) -> TensorRunner:
    """:func:`adapt_channels` on float32 CPU tensors: the same operations, so both give the same
    numbers; the Upscaler's whole-image path calls this one, its tiles the numpy one."""

    def adapted(batch: torch.Tensor) -> torch.Tensor:
        c = batch.shape[1]
        if c == channels:
            return forward(batch)
        if c == 1 and channels == 3:
            return forward(batch.expand(-1, 3, -1, -1).contiguous()).mean(dim=1, keepdim=True)
        if c == 3 and channels == 1:
            return _luma_then_bicubic_chroma(forward, batch)
        raise SuperresError(f"the model takes {channels}-channel images, not {c}-channel ones")

    return adapted


def _luma_then_bicubic_chroma(forward: TensorRunner, batch: torch.Tensor) -> torch.Tensor:
    # In torch and in the batch's float32 throughout. The chroma is resized as RGB's chroma
    # part (three input-sized planes; bicubic commutes with the colour transform) and joined
    # to the model's Y with one product per output pixel: at x4 on small photos the split,
    # the resize of Cb and Cr and the 3x3 join took a third of ESPCN's time
    # (python benchmarks/inference_speed.py --pipeline-only).
    y = forward(luma_to_model(rgb_to_y_torch(batch)))  # (B, 1, sh, sw), as the model takes Y
    chroma = imresize_torch(chroma_to_rgb_torch(batch), size=tuple(y.shape[2:]))  # (B, 3, sh, sw)
    return rgb_from_luma_torch(luma_from_model(y), chroma)


def image_size(image) -> tuple[int, int] | None:
    """(height, width) of an image of any kind :meth:`~.upscaler.Upscaler.upscale` takes; None
    for an animated ImageData (its frames run one by one) or a kind that is not an image."""
    from PIL import Image

    if isinstance(image, ImageData):
        return None if image.animation is not None else (int(image.pixels.shape[0]), int(image.pixels.shape[1]))
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, (np.ndarray, torch.Tensor)) and image.ndim >= 2:
        rows, columns = (image.shape[:2] if isinstance(image, np.ndarray) else image.shape[-2:])
        return int(rows), int(columns)
    return None
