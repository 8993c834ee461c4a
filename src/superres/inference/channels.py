"""The kinds of image a call accepts, and running a model on images with another number of
channels than it was trained on.

The one place where both are decided, for the inference API, the batch walker, the
explanations and the paper protocol alike. The kinds (:func:`pil_pixels`,
:func:`hwc_pixels`, :func:`split_alpha`, :func:`model_planes`, :func:`image_size`):

- a PIL image in mode L, LA, RGB, RGBA, I;16, I (within 0-65535) or F keeps its mode and
  depth (I;16 and I are 16-bit); any other mode is converted to RGB(A) or L first;
- a numpy array HxW or HxWxC (C = 1, 2 = grey + alpha, 3, 4 = RGBA), uint8, uint16 or float
  in [0, 1]; a float tensor (C, H, W) is one such array, channels first; an
  :class:`~superres.imaging.io.ImageData` is its pixels and alpha plane;
- alpha never goes through the model: the colour under fully transparent pixels is filled
  from its neighbours first (:mod:`.alpha`), and the alpha plane is resized apart.

The channels:

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
from superres.imaging.color import chroma_to_rgb_torch, rgb_from_luma_torch, rgb_to_y_torch
from superres.imaging.io import ImageData, to_float
from superres.imaging.resize import imresize_torch
from superres.inference.alpha import bleed_colour
from superres.inference.tiling import Runner
from superres.models.contract import luma_from_model, luma_to_model

__all__ = [
    "PIL_MODES", "adapt_channels", "adapt_channels_tensor", "hwc_pixels", "image_size", "join_alpha", "model_planes",
    "numpy_runner", "pil_from_pixels", "pil_pixels", "split_alpha", "tensor_runner",
]

#: PIL modes that are upscaled in their own mode; any other is converted to RGB(A) or L first.
PIL_MODES = ("L", "LA", "RGB", "RGBA", "I;16", "I", "F")

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


def pil_pixels(image) -> tuple[np.ndarray, str]:
    """A PIL image's pixels as an HxW or HxWxC uint8, uint16 or float32 array, and the mode
    they come back in (:func:`pil_from_pixels`): one of :data:`PIL_MODES`. A palette image
    with transparency becomes RGBA, mode 1 becomes L, other modes RGB; I;16 and I (whose
    values must lie within 0-65535) become uint16."""
    mode = image.mode
    if mode not in PIL_MODES:
        transparent = "transparency" in image.info or mode in ("PA", "La", "RGBa") or (mode == "P" and image.palette.mode == "RGBA")
        image = image.convert("L" if mode == "1" else "RGBA" if transparent else "RGB")
        mode = image.mode
    array = np.asarray(image)
    if mode == "I":
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError("32-bit integer images are upscaled only within 0-65535")
        array = array.astype(np.uint16)
    elif mode.startswith("I;16"):
        array = array.astype(np.uint16)
    return array, mode


def pil_from_pixels(array: np.ndarray, mode: str, info: dict):
    """The PIL image of ``array`` in ``mode`` (as :func:`pil_pixels` gave it), with the ICC
    profile, EXIF and resolution of ``info``."""
    from PIL import Image

    result = Image.fromarray(array)
    if mode == "I":
        result = result.convert("I")
    for key in ("icc_profile", "exif", "dpi"):
        if key in info:
            result.info[key] = info[key]
    return result


def hwc_pixels(array: np.ndarray) -> np.ndarray:
    """An HxW or HxWxC array as (H, W, C), C from 1 to 4, of uint8, uint16 or float: the array
    kinds a call accepts; a ValueError or TypeError says what is wrong."""
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC array, got shape {array.shape}")
    hwc = array[..., None] if array.ndim == 2 else array
    if hwc.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected 1, 2, 3 or 4 channels, got {hwc.shape[2]}")
    if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"expected uint8, uint16 or float pixels, got {array.dtype}")
    return hwc


def split_alpha(hwc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) pixels as (colour, alpha): C = 2 and 4 carry alpha last."""
    channels = hwc.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"expected 1, 2, 3 or 4 channels, got {channels}")
    return (hwc[..., :-1], hwc[..., -1]) if channels in (2, 4) else (hwc, None)


def join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """The inverse of :func:`split_alpha`."""
    return colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)


def model_planes(image) -> tuple[np.ndarray, np.ndarray | None]:
    """What the model sees of ``image`` (any kind :meth:`~.upscaler.Upscaler.upscale` takes, a
    single one: a tensor is (C, H, W), an animation gives its first frame): float32 colour
    planes (C, H, W) in [0, 1], C = 1 or 3, the colour under fully transparent pixels filled
    as upscaling fills it, and the alpha plane (H, W) in [0, 1] or None. Explanations call it
    so that they explain the very image an upscale runs."""
    from PIL import Image

    if isinstance(image, ImageData):
        colour, alpha = image.pixels, image.alpha
    else:
        if isinstance(image, Image.Image):
            image = pil_pixels(image)[0]
        elif isinstance(image, torch.Tensor):
            if image.ndim != 3 or not image.is_floating_point():
                raise ValueError(f"expected a float (C, H, W) tensor, got {image.dtype} of shape {tuple(image.shape)}")
            image = image.detach().float().cpu().numpy().transpose(1, 2, 0)
        elif not isinstance(image, np.ndarray):
            raise TypeError(f"cannot take a {type(image).__name__}: pass a PIL image, a numpy array, a torch tensor or an ImageData")
        colour, alpha = split_alpha(hwc_pixels(image))
    colour = to_float(colour) if colour.dtype in (np.uint8, np.uint16) else colour.astype(np.float32)
    if alpha is not None:
        alpha = to_float(alpha) if alpha.dtype in (np.uint8, np.uint16) else alpha.astype(np.float32)
        colour = bleed_colour(colour, alpha)
    return np.ascontiguousarray(colour.transpose(2, 0, 1), dtype=np.float32), alpha
