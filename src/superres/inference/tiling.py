"""Tiled inference: run a model on overlapping tiles and blend them into one seamless output.

A convolution near a tile's edge sees padding instead of the neighbouring pixels, so the
outer band of every tile's output is wrong by an amount that fades with the distance from
the edge. The engine therefore:

- cuts the image into equal tiles (so they batch) whose neighbours overlap by at least
  ``overlap`` LR pixels, spread evenly so that the last tile ends at the image border;
- weighs each tile's output, along each axis, by a window that is 0 over the outer third
  of every overlap it shares with a neighbour, rises linearly across the middle third and
  is 1 beyond (and at the image border, where the tile sees what the whole image would);
- normalises the windows so they sum to exactly 1 at every output pixel (a partition of
  unity per axis; the 2-D weight is the product of the two axes' windows).

So a pixel takes its value only from tiles in which it lies more than ``overlap / 3`` LR
pixels from a cut edge: for a model whose receptive-field radius is within that, tiled and
whole-image outputs agree to float rounding; beyond it, the linear cross-fade hides the
seam. The output is accumulated in one preallocated float32 numpy buffer on the host, so
only a batch of tiles is ever on the device.

The model is any callable ``run(batch) -> batch`` on float32 numpy arrays, (B, C, h, w) to
(B, C', s*h, s*w): a PyTorch module and an ONNX Runtime session are interchangeable.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from superres.device import share_of
from superres.imaging.resize import imresize

__all__ = ["Runner", "axis_weights", "bicubic_planes", "choose_tiling", "plan_axis", "upscale_tiled"]

#: (B, C, h, w) float32 -> (B, C', scale*h, scale*w) float32.
Runner = Callable[[np.ndarray], np.ndarray]

# Bicubic (for alpha and comparisons) runs in tiles of this size: exact for any overlap of
# 6 or more (the kernel reaches 2 LR pixels), independent of the model's tiling.
_BICUBIC_TILE = 256
_BICUBIC_OVERLAP = 8
# Below this a tile is mostly overlap; memory permitting, tiles are never chosen smaller.
_MIN_TILE = 64


def plan_axis(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) of the tiles covering ``[0, length)`` along one axis, in LR pixels.

    All tiles have the size ``min(tile, length)``; neighbours overlap by at least
    ``overlap`` (at most half a tile); the starts are spread evenly from 0 to
    ``length - tile``. ``tile <= 0`` or ``tile >= length`` gives one tile.
    """
    if tile <= 0 or tile >= length:
        return [(0, length)]
    overlap = max(0, min(overlap, tile // 2))
    step = tile - overlap
    count = math.ceil((length - overlap) / step)  # >= 2, since length > tile
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    return [(start, start + tile) for start in starts]


def _ramp(distance: np.ndarray, overlap: float) -> np.ndarray:
    """0 within overlap/3 of a cut edge, rising linearly to 1 at 2*overlap/3."""
    third = overlap / 3
    return np.clip((distance - third) / third, 0.0, 1.0)


def axis_weights(spans: list[tuple[int, int]], length: int, scale: int, overlap: int) -> list[np.ndarray]:
    """Each tile's blending window along one axis, in output pixels, normalised so that the
    windows of all tiles sum to 1 at every output position (see the module docstring)."""
    if len(spans) == 1:
        return [np.ones((spans[0][1] - spans[0][0]) * scale, dtype=np.float32)]
    tile = spans[0][1] - spans[0][0]
    overlap_out = max(min(overlap, tile // 2), 1) * scale
    windows = []
    total = np.zeros(length * scale, dtype=np.float64)
    for start, stop in spans:
        centre = np.arange(start * scale, stop * scale, dtype=np.float64) + 0.5
        window = np.ones_like(centre)
        if start > 0:
            window *= _ramp(centre - start * scale, overlap_out)
        if stop < length:
            window *= _ramp(stop * scale - centre, overlap_out)
        windows.append(window)
        total[start * scale : stop * scale] += window
    if np.any(total <= 0):  # cannot happen for spans from plan_axis; guards hand-made ones
        raise ValueError("tiles leave output pixels without weight: overlap too small for the tile size")
    return [(w / total[s * scale : e * scale]).astype(np.float32) for w, (s, e) in zip(windows, spans)]


def choose_tiling(
    height: int,
    width: int,
    *,
    bytes_per_pixel: float,
    available: int,
    max_tile: int | None = None,
    max_batch: int = 8,
    batch_size: int | None = None,
) -> tuple[int, int]:
    """(tile, batch) for a ``height`` x ``width`` input, from the memory ``available`` (bytes).

    The budget is :func:`superres.device.share_of` ``available``. ``bytes_per_pixel`` is the model's peak
    working memory per LR pixel. The tile is 0 (the whole image in one call) when it fits the
    budget and ``max_tile``; otherwise the largest multiple of 16 (at least 64) of which
    ``batch_size`` tiles fit. ``batch`` is ``batch_size`` if given, else as many tiles (or
    whole images) as fit, up to ``max_batch``.
    """
    budget = share_of(available)
    per_call = batch_size or 1
    side = int(math.sqrt(budget / per_call / bytes_per_pixel)) // 16 * 16
    if max_tile is not None:
        side = min(side, max_tile)
    whole = bytes_per_pixel * height * width
    if whole * per_call <= budget and (max_tile is None or max(height, width) <= max_tile):
        tile, area = 0, height * width
    else:
        tile = max(side, _MIN_TILE)
        area = tile * tile
    batch = batch_size or max(1, min(max_batch, int(budget // (bytes_per_pixel * area))))
    return tile, batch


def upscale_tiled(
    run: Runner,
    image: np.ndarray,
    *,
    scale: int,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    progress: bool | Callable[[int, int], object] = False,
) -> np.ndarray:
    """Upscale a (C, H, W) float32 image by ``scale`` with ``run``, tile by tile.

    ``tile`` is the tile side in LR pixels (0: the whole image in one call); ``batch_size``
    tiles go to ``run`` at once. ``progress`` is True for a tqdm bar (shown when there is more
    than one batch) or a callable ``progress(done_tiles, total_tiles)``. Returns the
    (C', scale*H, scale*W) float32 output; with one tile it is ``run``'s own output.
    """
    _, height, width = image.shape
    rows = plan_axis(height, tile, overlap)
    cols = plan_axis(width, tile, overlap)
    tiles = [(r, c) for r in range(len(rows)) for c in range(len(cols))]
    batch_size = max(1, int(batch_size))
    if len(tiles) == 1:
        output = run(image[None])
        _check_output(output, image.shape[1:], scale)
        if callable(progress):
            progress(1, 1)
        return output[0]

    row_weights = axis_weights(rows, height, scale, overlap)
    col_weights = axis_weights(cols, width, scale, overlap)
    bar = None
    if progress is True and len(tiles) > batch_size:
        from tqdm import tqdm

        bar = tqdm(total=len(tiles), unit="tile", leave=False, desc="upscaling")
    out = None
    done = 0
    try:
        for first in range(0, len(tiles), batch_size):
            chunk = tiles[first : first + batch_size]
            batch = np.stack([image[:, rows[r][0] : rows[r][1], cols[c][0] : cols[c][1]] for r, c in chunk])
            result = run(batch)
            _check_output(result, batch.shape[2:], scale)
            if out is None:
                out = np.zeros((result.shape[1], height * scale, width * scale), dtype=np.float32)
            if not result.flags.writeable:
                result = result.copy()
            for (r, c), tile_out in zip(chunk, result):
                tile_out *= row_weights[r][:, None] * col_weights[c][None, :]  # in place: no second tile-sized temporary
                (y0, y1), (x0, x1) = rows[r], cols[c]
                out[:, y0 * scale : y1 * scale, x0 * scale : x1 * scale] += tile_out
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            elif callable(progress):
                progress(done, len(tiles))
    finally:
        if bar is not None:
            bar.close()
    return out


def _check_output(output: np.ndarray, in_size: tuple[int, int], scale: int) -> None:
    expected = (in_size[0] * scale, in_size[1] * scale)
    if output.ndim != 4 or tuple(output.shape[2:]) != expected:
        raise ValueError(f"the model turned a {in_size[0]}x{in_size[1]} tile into {tuple(output.shape)}, not x{scale} {expected}")


def _bicubic_run(scale: int) -> Runner:
    def run(batch: np.ndarray) -> np.ndarray:
        return np.stack([imresize(image.transpose(1, 2, 0), scale).transpose(2, 0, 1) for image in batch]).astype(np.float32)

    return run


def bicubic_planes(planes: np.ndarray, scale: int) -> np.ndarray:
    """(C, H, W) float planes upscaled with MATLAB bicubic (:func:`superres.imaging.resize.imresize`),
    in tiles so that memory stays small for any size; float32, not clipped."""
    planes = np.asarray(planes, dtype=np.float32)
    return upscale_tiled(_bicubic_run(scale), planes, scale=scale, tile=_BICUBIC_TILE, overlap=_BICUBIC_OVERLAP)
