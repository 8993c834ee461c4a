"""Teacher labels for distillation: degraded LR patches of the training photos, each with a
teacher model's output for exactly that input, cached on disk one file per sample.

Sample ``i`` of a label set is fixed by the set's seed and ``i`` alone: which photo, where the
HR crop lies, which degradation (:data:`KINDS`, in turn) and its random draws. So a label set
grows or resumes by computing only the files it lacks, and a sample is the same whichever
run made it. A file (``{i:06d}.npz``, written atomically) holds the LR patch and the
teacher's output as uint8 HxWx3, and where the HR crop lies in which photo (``photo``, ``y``,
``x``): the HR is cut again from the photo when training, not stored twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from superres.atomic import atomic_path
from superres.data.datasets import DataError, ImageStore, _augment, mean_gradient
from superres.data.degradations import Degradations, SecondOrder, make_lr_batch

__all__ = ["KINDS", "LabelSet", "label_sample", "make_labels", "TeacherLabelDataset"]

#: The degradations samples take in turn: Real-ESRGAN's second-order model of real photos,
#: and the light noise (sigma 0-12) and JPEG (quality 30-95) of everyday photos.
KINDS: dict[str, Degradations] = {
    "real": Degradations(second_order=SecondOrder()),
    "light": Degradations(noise_sigma=(0.0, 12.0), jpeg_quality=(30, 95)),
}

# A crop flatter than this (mean neighbour difference, 8-bit levels) is drawn again: a
# teacher's output on sky teaches a student nothing.
_MIN_GRADIENT = 2.0
_TRIES = 8


@dataclass(frozen=True)
class LabelSet:
    """Where a label set lives and what fixes its samples."""

    folder: Path
    photos: tuple[str, ...]
    scale: int = 4
    lr_size: int = 64
    seed: int = 0

    def path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npz"

    def manifest(self) -> dict:
        return {"photos": list(self.photos), "scale": self.scale, "lr_size": self.lr_size, "seed": self.seed, "kinds": list(KINDS)}


def _generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def label_sample(store: ImageStore, labels: LabelSet, index: int) -> tuple[np.ndarray, dict]:
    """Sample ``index``'s degraded LR patch (uint8 HxWx3) and where its HR crop lies."""
    generator = _generator(labels.seed, index)
    hr_size = labels.lr_size * labels.scale
    for _ in range(_TRIES):
        photo = store.pick(float(torch.rand(1, generator=generator)))
        height, width = store.sizes[photo]
        y = int(torch.randint(0, height - hr_size + 1, (1,), generator=generator))
        x = int(torch.randint(0, width - hr_size + 1, (1,), generator=generator))
        hr = store.patch(photo, y, x, hr_size, hr_size)
        if mean_gradient(hr) >= _MIN_GRADIENT:
            break
    kind = tuple(KINDS)[index % len(KINDS)]
    batch = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))[None]
    lr, _ = make_lr_batch(batch, labels.scale, KINDS[kind], generator)
    lr8 = (lr[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return lr8, {"photo": store.files[photo].name, "y": y, "x": x, "kind": kind}


def make_labels(
    teacher: Callable[[np.ndarray], np.ndarray],
    labels: LabelSet,
    count: int,
    *,
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Compute and cache samples ``start`` to ``count - 1`` that the folder lacks; returns how
    many were computed. ``teacher`` maps a (3, h, w) float32 RGB array in [0, 1] to its
    (3, s*h, s*w) output (e.g. :class:`superres.models.ncnn.NcnnRuntime`)."""
    labels.folder.mkdir(parents=True, exist_ok=True)
    _check_manifest(labels)
    store = ImageStore([Path(p) for p in labels.photos], cache="memory", min_size=labels.lr_size * labels.scale)
    made = 0
    for index in range(start, count):
        if labels.path(index).is_file():
            continue
        lr, where = label_sample(store, labels, index)
        out = teacher(np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        taught = (np.clip(out, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
        if taught.shape != (lr.shape[0] * labels.scale, lr.shape[1] * labels.scale, 3):
            raise DataError(f"the teacher returned {taught.shape} for a {lr.shape} LR patch at x{labels.scale}")
        with atomic_path(labels.path(index), suffix=".npz") as temp:
            np.savez(temp, lr=lr, teacher=taught, where=json.dumps(where))
        made += 1
        if progress is not None:
            progress(index, made)
    return made


def _check_manifest(labels: LabelSet) -> None:
    manifest = labels.folder / "labels.json"
    wanted = labels.manifest()
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise DataError(f"'{labels.folder}' holds labels made with other settings ({', '.join(changed)}); use another folder")
        return
    with atomic_path(manifest) as temp:
        temp.write_text(json.dumps(wanted, indent=2))


class TeacherLabelDataset(Dataset):
    """Cached teacher labels as an endless stream of training samples: sample ``i`` is
    ``(lr, teacher, hr)`` uint8 tensors, (3, p, p) and (3, s*p, s*p), a random ``patch``-pixel
    LR crop (the whole sample when ``patch`` is None) of a cached sample drawn with a generator
    seeded by ``(seed, i)``, under one of the 8 dihedral transforms when ``augment``.

    The HR crops are cut from ``store``, the photos the labels were made from (matched by file
    name). The folders are read again every ``rescan`` samples, so a run can start while its
    labels are still being made and take up the new ones as they come."""

    def __init__(self, folders: Sequence[str | os.PathLike], store: ImageStore, *, patch: int | None = None, seed: int = 0, augment: bool = True, rescan: int = 2000):
        self.folders = [Path(f) for f in folders]
        self.scale = None
        for folder in self.folders:
            manifest = folder / "labels.json"
            if not manifest.is_file():
                raise DataError(f"'{folder}' is not a label set (no labels.json; make one with python -m superres.training.distill labels)")
            scale = json.loads(manifest.read_text())["scale"]
            if self.scale not in (None, scale):
                raise DataError(f"label sets of different scales: x{self.scale} and x{scale} in '{folder}'")
            self.scale = scale
        self.store = store
        self._by_name = {f.name: i for i, f in enumerate(store.files)}
        self.patch, self.seed, self.augment, self.rescan = patch, seed, augment, rescan
        self._scan()
        if not self.files:
            raise DataError(f"no labels in {', '.join(map(str, self.folders))}")

    def _scan(self) -> None:
        self.files = [f for folder in self.folders for f in sorted(folder.glob("[0-9]*.npz"))]
        self._scanned_at = 0

    def __len__(self) -> int:  # the stream is endless; the sampler decides how much is read
        return 2**62

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if index - self._scanned_at >= self.rescan or index < self._scanned_at:
            self._scan()
            self._scanned_at = index
        rng = np.random.default_rng([self.seed, index])
        file = self.files[int(rng.integers(0, len(self.files)))]
        with np.load(file) as sample:
            lr, taught, where = sample["lr"], sample["teacher"], json.loads(str(sample["where"]))
        if where["photo"] not in self._by_name:
            raise DataError(f"'{file}' was made from photo {where['photo']!r}, which is not in data.train")
        s = self.scale
        hr = self.store.patch(self._by_name[where["photo"]], where["y"], where["x"], taught.shape[0], taught.shape[1])
        if self.patch is not None and self.patch < lr.shape[0]:
            y, x = (int(v) for v in rng.integers(0, lr.shape[0] - self.patch + 1, size=2))
            lr = lr[y : y + self.patch, x : x + self.patch]
            taught = taught[y * s : (y + self.patch) * s, x * s : (x + self.patch) * s]
            hr = hr[y * s : (y + self.patch) * s, x * s : (x + self.patch) * s]
        if self.augment:
            code = int(rng.integers(0, 8))
            lr, taught, hr = (_augment(a, code) for a in (lr, taught, hr))
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1) for a in (lr, taught, hr))  # type: ignore[return-value]
