"""Fixed, named degradations for scoring a model on degraded inputs (``superres eval
--degrade``, and a training run's ``val.degrade``): the same image and preset always give
the same LR, so anyone can reproduce a table.

- ``jpegQ`` (e.g. ``jpeg40``): the protocol's MATLAB-bicubic LR saved as a JPEG of quality Q;
- ``noiseS`` (e.g. ``noise8``): the bicubic LR plus Gaussian colour noise of sigma S (0-255);
- ``real``: Real-ESRGAN's second-order model with the paper's ranges (:mod:`.second_order`),
  seeded by the image's name.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import torch

from superres.data.degradations.second_order import SecondOrder, add_gaussian_noise, jpeg_round_trip, second_order_lr
from superres.imaging.resize import imresize

__all__ = ["PRESET_HELP", "check_preset", "degrade", "degrade_with_file"]

PRESET_HELP = "jpegQ (1-100, e.g. jpeg40), noiseS (sigma on 0-255, e.g. noise8) or real"
_PATTERN = re.compile(r"^(?:jpeg(\d{1,3})|noise(\d+(?:\.\d+)?)|real)$")


def check_preset(name: str) -> str:
    """``name`` if it is a preset, else a ValueError naming the accepted forms."""
    match = _PATTERN.match(name)
    if match is None or (match.group(1) is not None and not 1 <= int(match.group(1)) <= 100):
        raise ValueError(f"unknown degradation {name!r}; expected {PRESET_HELP}")
    return name


def degrade(hr: np.ndarray, scale: int, preset: str, *, key: str = "") -> np.ndarray:
    """The LR (H/scale, W/scale, C) uint8 image of a modcropped (H, W, C) uint8 HR image under
    ``preset``; ``key`` (e.g. the image's name) seeds the random ones."""
    return degrade_with_file(hr, scale, preset, key=key)[0]


def degrade_with_file(hr: np.ndarray, scale: int, preset: str, *, key: str = "") -> tuple[np.ndarray, bytes | None]:
    """:func:`degrade`'s LR and, for a ``jpegQ`` preset, the JPEG file it was decoded from
    (None for the others): what a photo's reader has besides its pixels, such as the
    quantisation tables that tell its quality (:mod:`superres.imaging.jpeg_quality`)."""
    match = _PATTERN.match(check_preset(preset))
    generator = torch.Generator().manual_seed(zlib.crc32(f"{preset}:{key}".encode()))
    if preset == "real":
        x = torch.from_numpy(np.array(hr)).permute(2, 0, 1)[None].float() / 255.0  # a copy: hr may be read-only
        lr = second_order_lr(x, scale, SecondOrder(), generator)
    else:
        bicubic = imresize(hr, 1 / scale)
        if match.group(1) is not None:
            # The bicubic LR as jpeg_batch would save it (rounded to 8 bits), kept with its file.
            array = (torch.from_numpy(bicubic).float() / 255.0).clamp(0, 1).mul(255).round().byte().numpy()
            decoded, data = jpeg_round_trip(array, int(match.group(1)))
            return decoded.astype(np.uint8), data
        lr = torch.from_numpy(bicubic).permute(2, 0, 1)[None].float() / 255.0
        sigma = torch.tensor([float(match.group(2))])
        lr = add_gaussian_noise(lr, sigma, torch.tensor([False]), generator)
    return (lr[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy().astype(np.uint8), None
