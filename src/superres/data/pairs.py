"""LR/HR training pairs made in the DataLoader's worker processes.

Synthesising the LR side of a batch (above all the second-order degradation model, a third
of a SwiftRep training step on this CPU) costs as much as a good part of the step itself.
Made in the training process it runs between steps; made by the loader's workers it runs
beside them, on another core. Either way a batch's randomness comes from
:func:`batch_seed` of (seed, iteration), so both give the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, default_collate

from superres.data.degradations import Degradations, make_lr_batch

__all__ = ["LRHRPair", "IndexedPatches", "SynthesizeLR", "batch_seed"]


def batch_seed(seed: int, iteration: int) -> int:
    """The seed of the LR synthesis of training batch ``iteration`` of a run seeded ``seed``."""
    return seed * 1_000_003 + iteration


class LRHRPair(NamedTuple):
    """A batch made ready: float LR and HR (target) in [0, 1]."""

    lr: torch.Tensor
    hr: torch.Tensor


class IndexedPatches(Dataset):
    """``dataset``'s items with their index in the patch stream (which tells the batch)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return index, self.dataset[index]


@dataclass(frozen=True)
class SynthesizeLR:
    """A DataLoader ``collate_fn`` over :class:`IndexedPatches` items that stacks the HR
    patches and makes their LR with :func:`make_lr_batch`, seeded by the batch's iteration as
    read from the stream index (the layout of :class:`~superres.data.datasets.PatchStreamSampler`)."""

    scale: int
    degradations: Degradations
    seed: int
    batch_size: int
    rank: int = 0
    world: int = 1

    def __call__(self, samples: list) -> LRHRPair:
        first = samples[0][0]
        iteration = (first // self.batch_size - self.rank) // self.world
        hr = default_collate([patch for _, patch in samples])
        generator = torch.Generator().manual_seed(batch_seed(self.seed, iteration))
        return LRHRPair(*make_lr_batch(hr, self.scale, self.degradations, generator))
