"""The paper protocol over folders of images: what every quality number of superres comes from.

For each HR image: modcrop to the scale, LR = MATLAB bicubic (or a ready-made LR from a
paired folder), SR = model(LR) clipped and rounded to uint8, then PSNR and SSIM on Y (on
the image itself if grayscale) with ``scale`` pixels shaved from each border
(see ../shared/REFERENCE.md and ``superres.metrics``).

A grayscale image is fed to an RGB model as three identical channels and the model's
output is averaged back to one channel before rounding, so it is scored as it is; an RGB
image on a luma model has its Y upscaled by the model and its chroma by bicubic, as the
papers of those models did (:mod:`superres.inference.channels`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from superres.data.datasets import BenchmarkImage, load_benchmark, load_paired_benchmark
from superres.errors import printable
from superres.inference.channels import adapt_channels
from superres.inference.ensemble import self_ensemble
from superres.metrics import SSIM_WINDOW, psnr, ssim
from superres.models.contract import input_channels

__all__ = ["ImageScore", "DatasetScore", "predict_uint8", "score_images", "evaluate", "format_table", "to_json", "to_csv"]


@dataclass
class ImageScore:
    dataset: str
    scale: int
    image: str
    psnr: float
    ssim: float


@dataclass
class DatasetScore:
    dataset: str
    scale: int
    psnr: float
    ssim: float
    images: list[ImageScore] = field(default_factory=list)
    #: Whether the scores are of the self-ensemble (the papers' "+" rows).
    ensemble: bool = False


@torch.no_grad()
def predict_uint8(model: nn.Module, lr: np.ndarray, device: torch.device | str = "cpu", *, ensemble: bool = False) -> np.ndarray:
    """Run ``model`` on one HxWxC uint8 image (C = 1 or 3) and return its uint8 output, rounded.
    Images with other channels than the model's go through :func:`adapt_channels`; with
    ``ensemble`` the model is its self-ensemble (:func:`superres.inference.ensemble.self_ensemble`)."""

    # Not the Upscaler's TorchRunner: that moves the model to channels-last on CUDA, and here
    # the model may be training's live EMA generator, which must be left as it is.
    def run(batch: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    x = (lr.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]  # (1, C, H, W)
    y = adapt_channels(self_ensemble(run) if ensemble else run, input_channels(model))(x)  # (1, C, sH, sW)
    return np.round(np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def score_images(
    model: nn.Module,
    items: Sequence[BenchmarkImage],
    *,
    scale: int,
    dataset: str,
    device: torch.device | str = "cpu",
    outputs: list[np.ndarray] | None = None,
    errors: list[str] | None = None,
    ensemble: bool = False,
) -> DatasetScore:
    """Score ``model`` on prepared benchmark images; the mean is over images, as the papers do.
    The SR images of the images scored are appended to ``outputs`` when it is given (for
    samples and figures), in the order of the returned scores. ``ensemble`` scores the
    model's self-ensemble (the papers' "+").

    An image that cannot be scored is left out of the means, with a one-line reason appended
    to ``errors`` (raised as :class:`ValueError` when ``errors`` is None): one too small for
    the protocol (``scale`` px shaved from each border must leave SSIM's 11x11 window, which
    also leaves every model an LR of 5 px a side or more), and one the model reproduces
    exactly (a flat image: its PSNR is infinite, which would make the mean infinite; it says
    nothing about the model)."""
    scores = []

    def skip(reason: str) -> None:
        if errors is None:
            raise ValueError(reason)
        errors.append(reason)

    for item in items:
        h, w = item.hr.shape[:2]
        if min(h, w) - 2 * scale < SSIM_WINDOW:
            skip(f"cannot score '{item.name}': {w}x{h} is too small to score at x{scale} (needs {2 * scale + SSIM_WINDOW} px a side: "
                 f"{scale} px shaved from each border, then SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window)")
            continue
        sr = predict_uint8(model, item.lr, device, ensemble=ensemble)
        if sr.shape != item.hr.shape:
            raise ValueError(f"{item.name}: model output {sr.shape} does not match HR {item.hr.shape}")
        score = ImageScore(dataset, scale, item.name, psnr(sr, item.hr, shave=scale), ssim(sr, item.hr, shave=scale))
        if math.isinf(score.psnr):
            skip(f"cannot score '{item.name}': infinite PSNR (the output equals the image after shaving, as for a flat image); left out of the means")
            continue
        scores.append(score)
        if outputs is not None:
            outputs.append(sr)
    return DatasetScore(
        dataset,
        scale,
        float(np.mean([s.psnr for s in scores])) if scores else float("nan"),
        float(np.mean([s.ssim for s in scores])) if scores else float("nan"),
        scores,
        ensemble,
    )


def evaluate(
    model_for_scale: Callable[[int], nn.Module],
    folders: Sequence[str | os.PathLike],
    scales: Sequence[int],
    *,
    lr_folders: Sequence[str | os.PathLike] | None = None,
    device: torch.device | str = "cpu",
    errors: list[str] | None = None,
    ensemble: bool = False,
) -> list[DatasetScore]:
    """Score a model on each HR folder at each scale. ``model_for_scale(s)`` returns the model
    for scale ``s``. With ``lr_folders`` (one per HR folder) the LR images are read from them
    instead of made by bicubic. Images that cannot be read or scored (see :func:`score_images`)
    are skipped and reported in ``errors``. ``ensemble`` scores the self-ensemble of the model
    (eight flips and rotations, averaged)."""
    if lr_folders is not None and len(lr_folders) != len(folders):
        raise ValueError(f"{len(folders)} HR folders but {len(lr_folders)} LR folders")
    results = []
    for scale in scales:
        model = model_for_scale(scale)
        for i, folder in enumerate(folders):
            name = Path(folder).name
            if lr_folders is None:
                items = load_benchmark(folder, scale, errors=errors)
            else:
                items = load_paired_benchmark(folder, lr_folders[i], scale, errors=errors)
            results.append(score_images(model, items, scale=scale, dataset=name, device=device, errors=errors, ensemble=ensemble))
    return results


def format_table(results: Sequence[DatasetScore], *, per_image: bool = False) -> str:
    """A text table: one row per dataset and scale (and per image with ``per_image``); the
    scale of a self-ensemble's scores is marked "+" (x4+), as the papers mark their rows."""
    rows = [("dataset", "scale", "image", "PSNR", "SSIM")]
    for r in results:
        label = f"x{r.scale}{'+' if r.ensemble else ''}"
        if per_image:  # an image's name is the user's file name: escaped, so one row stays one line
            rows += [(r.dataset, label, printable(s.image), f"{s.psnr:.2f}", f"{s.ssim:.4f}") for s in r.images]
        rows.append((r.dataset, label, "(mean)" if per_image else f"{len(r.images)} images", f"{r.psnr:.2f}", f"{r.ssim:.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(results: Sequence[DatasetScore]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


def to_csv(results: Sequence[DatasetScore]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["dataset", "scale", "image", "psnr", "ssim"])
    for r in results:
        for s in r.images:
            writer.writerow([r.dataset, r.scale, s.image, f"{s.psnr:.4f}", f"{s.ssim:.6f}"])
        writer.writerow([r.dataset, r.scale, "", f"{r.psnr:.4f}", f"{r.ssim:.6f}"])
    return buffer.getvalue()
