"""Self-ensemble: the model run on the eight flips and rotations of its input, averaged.

EDSR+ and RCAN+ (Lim et al. 2017, section 4.3; Zhang et al. 2018) report it as the "+"
rows: each input goes through the model under the eight transforms of the dihedral group
(four 90-degree rotations, each with and without a horizontal flip), every output is
transformed back, and the eight are averaged. A model that has learnt no orientation of
its own gains a few tenths of a dB for eight times the work (our measurements:
docs/SELF_ENSEMBLE.md).

It wraps a tile runner (:data:`superres.inference.tiling.Runner`), so it composes with
the tiling engine (each tile is ensembled), with every backend (the runner is PyTorch or
ONNX Runtime alike) and with alpha (which is upscaled by bicubic, apart from the model).
"""

from __future__ import annotations

import numpy as np

from superres.inference.tiling import Runner

__all__ = ["DIHEDRAL", "self_ensemble"]

#: The eight transforms as (quarter turns, flip): flip (if any) first, then the rotation.
DIHEDRAL = tuple((turns, flip) for flip in (False, True) for turns in range(4))


def _forward(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    if flip:
        batch = batch[..., ::-1]
    # Contiguous: torch.from_numpy refuses the negative strides of a flipped view.
    return np.ascontiguousarray(np.rot90(batch, turns, axes=(2, 3)))


def _inverse(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    batch = np.rot90(batch, -turns, axes=(2, 3))
    return batch[..., ::-1] if flip else batch


def self_ensemble(run: Runner) -> Runner:
    """``run`` made into its self-ensemble: (B, C, h, w) -> (B, C', s*h, s*w), the mean of
    ``inverse_t(run(t(x)))`` over the eight dihedral transforms ``t`` (:data:`DIHEDRAL`).

    The eight calls are made one after another, so memory is that of one call plus the sum.
    """

    def ensembled(batch: np.ndarray) -> np.ndarray:
        total = None
        for turns, flip in DIHEDRAL:
            out = _inverse(run(_forward(batch, turns, flip)), turns, flip)
            if total is None:
                total = np.array(out, dtype=np.float32)
            else:
                total += out
        total *= np.float32(1 / len(DIHEDRAL))
        return total

    return ensembled
