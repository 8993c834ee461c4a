"""Transparency for upscaling: fill the colour under fully transparent pixels from their neighbours.

The colour under a pixel of alpha 0 is invisible but arbitrary (often black, sometimes a
matte green). A model, or any interpolation, mixes it into the visible pixels beside it, and
after upscaling the edge of a shape shows a dark (or green) fringe where alpha is between 0
and 1. Filling every fully transparent pixel with the colour of the nearest visible ones
("colour bleeding") before upscaling removes the fringe: the model sees a smooth continuation
of the shape's own colour across the edge. Visible pixels are left exactly as they are.

Why not premultiplied alpha? Upscaling ``colour * alpha`` and dividing by the upscaled alpha
is exact for a linear filter, but a learned model is not linear: the premultiplied edge is a
dark step that the model sharpens and rings, and dividing by a small alpha then amplifies the
error into the very fringe it was meant to prevent.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bleed_colour"]


def bleed_colour(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (H, W, C) float with every pixel of ``alpha`` (H, W) == 0 replaced by an
    alpha-weighted average of the visible pixels nearest to it (a pull-push pyramid).

    Returns a new float32 array; an image without fully transparent pixels, or with nothing
    visible, comes back unchanged.
    """
    colour = np.asarray(colour, dtype=np.float32)
    holes = alpha <= 0
    if not holes.any() or holes.all():
        return colour.copy()
    weight = np.asarray(alpha, dtype=np.float32)
    fill = _pull_push(colour * weight[..., None], weight)
    return np.where(holes[..., None], fill, colour).astype(np.float32, copy=False)


def _pull_push(premultiplied: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Colour estimate everywhere: ``premultiplied / weight`` where the weight is positive,
    else the estimate of the half-resolution level (2x2 sums), repeated back up."""
    height, width = weight.shape
    known = weight > 0
    estimate = premultiplied / np.maximum(weight, 1e-12)[..., None]
    if known.all() or (height == 1 and width == 1):
        return estimate
    # Pad to even sizes with zero weight, so the padding contributes nothing.
    ph, pw = height + height % 2, width + width % 2
    p = np.zeros((ph, pw, premultiplied.shape[2]), dtype=np.float32)
    w = np.zeros((ph, pw), dtype=np.float32)
    p[:height, :width] = premultiplied
    w[:height, :width] = weight
    coarse_p = p.reshape(ph // 2, 2, pw // 2, 2, -1).sum(axis=(1, 3))
    coarse_w = w.reshape(ph // 2, 2, pw // 2, 2).sum(axis=(1, 3))
    coarse = _pull_push(coarse_p, coarse_w)
    up = coarse.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return np.where(known[..., None], estimate, up)
