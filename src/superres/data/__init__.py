"""Training and evaluation data: HR folders as patch streams, paired folders, benchmarks."""

from superres.data.datasets import (
    BenchmarkImage,
    DataError,
    HRPatchDataset,
    ImageStore,
    PairedPatchDataset,
    PatchStreamSampler,
    list_images,
    load_benchmark,
    load_paired_benchmark,
)
from superres.data.degradations import Degradations, make_lr_batch

__all__ = [
    "BenchmarkImage", "DataError", "HRPatchDataset", "ImageStore", "PairedPatchDataset",
    "PatchStreamSampler", "list_images", "load_benchmark", "load_paired_benchmark",
    "Degradations", "make_lr_batch",
]
