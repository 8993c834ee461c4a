"""The paper protocol over folders of images: what every quality number of superres comes from.

For each HR image: modcrop to the scale, LR = MATLAB bicubic (or a ready-made LR from a
paired folder), SR = model(LR) clipped and rounded to the LR's grid (uint8, or uint16 for a
16-bit image, which is scored in its own range: PSNR's peak is 65535 there), then PSNR and
SSIM on Y (on the image itself if grayscale) with ``scale`` pixels shaved from each border
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
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

from superres.data.datasets import BenchmarkImage, list_images, load_benchmark, load_paired_benchmark
from superres.data.degradations import check_preset
from superres.errors import printable
from superres.imaging.io import ImageReadError, read_image
from superres.imaging.pixels import from_float, to_8bit, to_float
from superres.inference.channels import adapt_channels
from superres.inference.autopick import AutoModel
from superres.inference.ensemble import self_ensemble
from superres.metrics import NIQE_MIN_SIZE, SSIM_WINDOW, niqe, psnr, ssim
from superres.models.contract import input_channels

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

__all__ = [
    "ImageScore", "DatasetScore", "predict_uint8", "score_images", "evaluate", "score_no_reference", "format_table", "to_json", "to_csv",
]


@dataclass
class ImageScore:
    dataset: str
    scale: int
    image: str
    psnr: float  # NaN where there is no ground truth (no-reference scoring)
    ssim: float
    niqe: float | None = None  # the SR image's NIQE, when asked for (lower is more natural)
    model: str | None = None  # the model auto chose for this image (-m auto), else None


@dataclass
class DatasetScore:
    dataset: str
    scale: int
    psnr: float
    ssim: float
    images: list[ImageScore] = field(default_factory=list)
    niqe: float | None = None
    #: Whether the scores are of the self-ensemble (the papers' "+" rows).
    ensemble: bool = False


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _niqe_or_skip(sr: np.ndarray, name: str, skip: Callable[[str], None]) -> float | None:
    """NIQE of an SR image, or None with a reason when it is below NIQE's block grid."""
    if min(sr.shape[:2]) < NIQE_MIN_SIZE:
        skip(f"no NIQE for '{name}': its {sr.shape[1]}x{sr.shape[0]} result is under NIQE's {NIQE_MIN_SIZE}x{NIQE_MIN_SIZE}")
        return None
    return niqe(sr)


@torch.no_grad()
def predict_uint8(model: nn.Module, lr: np.ndarray, device: torch.device | str = "cpu", *, ensemble: bool = False) -> np.ndarray:
    """Run ``model`` on one HxWxC uint8 or uint16 image (C = 1 or 3) and return its output
    rounded to the same type (the name is older than 16-bit scoring). Images with other
    channels than the model's go through :func:`adapt_channels`; with ``ensemble`` the model
    is its self-ensemble (:func:`superres.inference.ensemble.self_ensemble`)."""

    # Not the Upscaler's TorchRunner: that moves the model to channels-last on CUDA, and here
    # the model may be training's live EMA generator, which must be left as it is.
    def run(batch: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    x = to_float(lr).transpose(2, 0, 1)[None]  # (1, C, H, W)
    y = adapt_channels(self_ensemble(run) if ensemble else run, input_channels(model))(x)  # (1, C, sH, sW)
    return from_float(y[0].transpose(1, 2, 0), lr.dtype)


def score_images(
    model: nn.Module | AutoModel,
    items: Sequence[BenchmarkImage],
    *,
    scale: int,
    dataset: str,
    device: torch.device | str = "cpu",
    outputs: list[np.ndarray] | None = None,
    errors: list[str] | None = None,
    with_niqe: bool = False,
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
    nothing about the model). With ``with_niqe`` each SR image's NIQE is scored too (the mean
    is over the images NIQE can score: results of 192 px a side or more). An
    :class:`~superres.inference.autopick.AutoModel` (``-m auto``) chooses the model per image,
    from the LR as a user would give it (its pixels, and its JPEG file where a preset made
    one); each score names the model chosen."""
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
        network, choice = model.for_image(item.lr, item.lr_file) if isinstance(model, AutoModel) else (model, None)
        sr = predict_uint8(network, item.lr, device, ensemble=ensemble)
        if sr.shape != item.hr.shape:
            raise ValueError(f"{item.name}: model output {sr.shape} does not match HR {item.hr.shape}")
        score = ImageScore(dataset, scale, item.name, psnr(sr, item.hr, shave=scale), ssim(sr, item.hr, shave=scale))
        score.model = None if choice is None else choice.name
        if math.isinf(score.psnr):
            skip(f"cannot score '{item.name}': infinite PSNR (the output equals the image after shaving, as for a flat image); left out of the means")
            continue
        if with_niqe:
            score.niqe = _niqe_or_skip(sr, item.name, skip)
        scores.append(score)
        if outputs is not None:
            outputs.append(sr)
    niqes = [s.niqe for s in scores if s.niqe is not None]
    return DatasetScore(
        dataset,
        scale,
        _mean([s.psnr for s in scores]),
        _mean([s.ssim for s in scores]),
        scores,
        niqe=_mean(niqes) if with_niqe else None,
        ensemble=ensemble,
    )


def evaluate(
    model_for_scale: Callable[[int], "nn.Module | AutoModel"],
    folders: Sequence[str | os.PathLike],
    scales: Sequence[int],
    *,
    lr_folders: Sequence[str | os.PathLike] | None = None,
    device: torch.device | str = "cpu",
    errors: list[str] | None = None,
    degrade: str | None = None,
    with_niqe: bool = False,
    ensemble: bool = False,
    lr_8bit: bool = False,
) -> list[DatasetScore]:
    """Score a model on each HR folder at each scale. ``model_for_scale(s)`` returns the model
    for scale ``s`` (or an :class:`AutoModel`, which chooses per image). With ``lr_folders``
    (one per HR folder) the LR images are read from them instead of made by bicubic; with
    ``degrade`` (a preset of :mod:`superres.data.degradations.presets`, e.g. ``jpeg40``,
    ``noise8``, ``real``) they are made by that fixed degradation instead, and the dataset is
    named ``Set5-jpeg40``.
    ``with_niqe`` adds the NIQE of each result; ``ensemble`` scores the self-ensemble of the
    model (eight flips and rotations, averaged). With ``lr_8bit`` the LR images are reduced
    to 8 bits (the model sees and gives 8-bit pixels), scored against the HR at its own depth:
    what an 8-bit pipeline loses on 16-bit data. Images that cannot be read or scored (see
    :func:`score_images`) are skipped and reported in ``errors``."""
    if lr_folders is not None and len(lr_folders) != len(folders):
        raise ValueError(f"{len(folders)} HR folders but {len(lr_folders)} LR folders")
    if lr_folders is not None and degrade is not None:
        raise ValueError("ready-made LR folders and a degradation preset exclude each other")
    if degrade is not None:
        check_preset(degrade)
    results = []
    for scale in scales:
        model = model_for_scale(scale)
        for i, folder in enumerate(folders):
            name = Path(folder).name + (f"-{degrade}" if degrade else "") + ("-8bit" if lr_8bit else "")
            if lr_folders is None:
                items = load_benchmark(folder, scale, errors=errors, degrade=degrade, lr_8bit=lr_8bit)
            else:
                items = load_paired_benchmark(folder, lr_folders[i], scale, errors=errors)
            results.append(
                score_images(model, items, scale=scale, dataset=name, device=device, errors=errors, with_niqe=with_niqe, ensemble=ensemble)
            )
    return results


def score_no_reference(
    upscaler_for_scale: Callable[[int], "Upscaler"],
    folders: Sequence[str | os.PathLike],
    scales: Sequence[int],
    *,
    errors: list[str] | None = None,
) -> list[DatasetScore]:
    """NIQE of the results of upscaling every image of each folder, as it is (real photos with
    no ground truth), at each scale; ``upscaler_for_scale(s)`` gives the :class:`Upscaler`
    (tiled, so a large photo is upscaled in bounded memory). PSNR and SSIM are NaN. Images
    that cannot be read, or whose results are too small for NIQE, are skipped with a reason
    in ``errors`` (raised when ``errors`` is None)."""

    def skip(reason: str) -> None:
        if errors is None:
            raise ValueError(reason)
        errors.append(reason)

    results = []
    for scale in scales:
        upscaler = upscaler_for_scale(scale)
        for folder in folders:
            scores = []
            for path in list_images(folder):
                try:
                    pixels = to_8bit(read_image(path).pixels)
                except ImageReadError as exc:
                    skip(str(exc))
                    continue
                sr = upscaler.upscale(pixels[..., :3] if pixels.ndim == 3 and pixels.shape[2] == 4 else pixels)
                value = _niqe_or_skip(sr, path.stem, skip)
                if value is not None:
                    scores.append(ImageScore(Path(folder).name, scale, path.stem, math.nan, math.nan, value))
            results.append(
                DatasetScore(
                    Path(folder).name, scale, math.nan, math.nan, scores, _mean([s.niqe for s in scores]),
                    ensemble=bool(getattr(upscaler, "ensemble", False)),
                )
            )
    return results


def _cells(psnr_value: float, ssim_value: float, niqe_value: float | None, with_niqe: bool) -> tuple[str, ...]:
    cells = ("-" if math.isnan(psnr_value) else f"{psnr_value:.2f}", "-" if math.isnan(ssim_value) else f"{ssim_value:.4f}")
    if with_niqe:
        cells += ("-" if niqe_value is None or math.isnan(niqe_value) else f"{niqe_value:.3f}",)
    return cells


def format_table(results: Sequence[DatasetScore], *, per_image: bool = False) -> str:
    """A text table: one row per dataset and scale (and per image with ``per_image``); a NIQE
    column when NIQE was scored, '-' where a score does not exist; the scale of a
    self-ensemble's scores is marked "+" (x4+), as the papers mark their rows."""
    with_niqe = any(r.niqe is not None for r in results)
    rows = [("dataset", "scale", "image", "PSNR", "SSIM") + (("NIQE",) if with_niqe else ())]
    for r in results:
        label = f"x{r.scale}{'+' if r.ensemble else ''}"
        if per_image:  # an image's name is the user's file name: escaped, so one row stays one line
            rows += [
                (r.dataset, label, printable(s.image) + (f" ({s.model})" if s.model else "")) + _cells(s.psnr, s.ssim, s.niqe, with_niqe)
                for s in r.images
            ]
        rows.append((r.dataset, label, "(mean)" if per_image else f"{len(r.images)} images") + _cells(r.psnr, r.ssim, r.niqe, with_niqe))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_ready(value):
    """NaN (a score that does not exist) as null, and no 'niqe' key where NIQE was not asked
    for, nor 'ensemble' where the scores are the plain model's, nor 'model' where no model
    was chosen per image."""
    if isinstance(value, dict):
        dropped = {("niqe", None), ("ensemble", False), ("model", None)}
        return {k: _json_ready(v) for k, v in value.items() if not any(k == key and v is empty for key, empty in dropped)}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def to_json(results: Sequence[DatasetScore]) -> str:
    return json.dumps(_json_ready([asdict(r) for r in results]), indent=2)


def to_csv(results: Sequence[DatasetScore]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with_niqe = any(r.niqe is not None for r in results)

    def niqe_cell(value: float | None) -> list[str]:
        return ["" if value is None else f"{value:.4f}"] if with_niqe else []

    writer.writerow(["dataset", "scale", "image", "psnr", "ssim"] + (["niqe"] if with_niqe else []))
    for r in results:
        for s in r.images:
            writer.writerow([r.dataset, r.scale, s.image, f"{s.psnr:.4f}", f"{s.ssim:.6f}"] + niqe_cell(s.niqe))
        writer.writerow([r.dataset, r.scale, "", f"{r.psnr:.4f}", f"{r.ssim:.6f}"] + niqe_cell(r.niqe))
    return buffer.getvalue()
