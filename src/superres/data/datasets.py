"""Datasets: HR folders sampled as random patches, paired LR/HR folders, benchmark folders.

Training data is a *stream of patches*: sample ``i`` of the stream is a pure function of
``(seed, i)`` (which image, where, which flip and rotation), so a run that resumes at step
``k`` sees exactly the patches it would have seen, on any number of workers or ranks
(:class:`PatchStreamSampler` hands each rank its share of the stream). Only HR patches
cross the DataLoader; the LR images are made on the batch with the MATLAB bicubic
(``make_lr_batch`` in ``degradations.py``), which is a pair of matrix products.

Decoding a large PNG costs 50-100 ms, far more than a training step needs its data, so the
images are decoded once (``ImageStore``): held in memory, or, for datasets larger than the
memory budget, cut once into 480 px sub-images saved as ``.npy`` files that are memory-mapped
(BasicSR's sub-image trick without the re-encoding). ``benchmarks/training_throughput.py``
times the pipeline with each cache.

Images keep their bit depth: a folder with 16-bit images trains on 16-bit patches (8-bit ones
among them widened exactly, x 257), so a user's 12- to 16-bit scans are not reduced to 256
levels; a folder of grayscale images trains on one channel, as the upscaler and the protocol
feed grayscale images to a model. The LR side is rounded to the patches' own grid
(:func:`superres.data.degradations.make_lr_batch`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from superres.data.degradations.presets import degrade_with_file
from superres.errors import SuperresError
from superres.imaging.color import modcrop
from superres.imaging.io import IMAGE_EXTENSIONS, ImageReadError, read_image
from superres.imaging.pixels import peak_value, to_8bit
from superres.imaging.resize import imresize

__all__ = [
    "DataError",
    "list_images",
    "ImageStore",
    "HRPatchDataset",
    "PairedPatchDataset",
    "PatchStreamSampler",
    "BenchmarkImage",
    "load_benchmark",
    "load_paired_benchmark",
]


class DataError(SuperresError):
    """A dataset folder that cannot be used (missing, empty, images too small)."""


def list_images(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root`` (recursively, sorted); a single file is returned as itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"no such folder: '{root}'")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"no images in '{root}'")
    return files


def conform(pixels: np.ndarray, dtype: np.dtype, channels: int) -> np.ndarray:
    """HxWxC uint8/uint16 ``pixels`` as ``dtype`` (8-bit widened exactly to 16: x 257) with
    ``channels`` (grayscale repeated to 3); a no-op for pixels that already are."""
    if pixels.dtype != dtype:
        pixels = pixels.astype(dtype) * dtype.type(257)
    if pixels.shape[2] != channels:
        pixels = np.repeat(pixels, channels, axis=2)
    return pixels


class ImageStore:
    """Decoded training images, each an HxWxC uint8 or uint16 array (C = 1 or 3), decoded once.

    ``dtype`` is uint16 when any image is 16-bit (the others are widened as patches are cut),
    else uint8; ``channels`` is 1 when every image is grayscale, else 3. :meth:`patch` cuts
    a crop in that common form.

    ``cache="memory"`` keeps them in RAM (they are shared copy-on-write with forked
    DataLoader workers). ``cache="subimages"`` cuts each image once into overlapping
    ``tile`` px sub-images saved as ``.npy`` under ``cache_dir`` and memory-maps them, for
    datasets that do not fit in memory. ``cache="none"`` decodes from disk on every access
    (only useful to measure what the caches save).
    """

    def __init__(self, folders: Sequence[str | os.PathLike], *, cache: str = "memory", cache_dir: str | os.PathLike | None = None, tile: int = 480, min_size: int = 0):
        if cache not in ("memory", "subimages", "none"):
            raise ValueError(f"cache must be 'memory', 'subimages' or 'none', not {cache!r}")
        self.cache = cache
        self.files = [f for folder in folders for f in list_images(folder)]
        self.skipped: list[str] = []
        self._dtypes: set = set()
        self._channels: set[int] = set()
        if cache == "subimages":
            self._arrays = self._build_subimages(Path(cache_dir or ".superres-cache"), tile)
            self.sizes = [a.shape[:2] for a in self._arrays]
        elif cache == "memory":
            self._arrays = []
            for f in self.files:
                image = self._decode(f)
                if image is not None:
                    self._arrays.append(image)
            self.sizes = [a.shape[:2] for a in self._arrays]
        else:
            self._arrays = None
            self.sizes = []
            kept = []
            for f in self.files:
                image = self._decode(f)
                if image is not None:
                    kept.append(f)
                    self.sizes.append(image.shape[:2])
            self.files = kept
        if not self.sizes:
            raise DataError(f"no readable training images in {', '.join(map(str, folders))}")
        self.dtype = np.dtype(np.uint16 if np.uint16 in self._dtypes else np.uint8)
        self.channels = 1 if self._channels == {1} else 3
        too_small = [i for i, (h, w) in enumerate(self.sizes) if min(h, w) < min_size]
        if len(too_small) == len(self.sizes):
            raise DataError(f"every training image is smaller than the {min_size} px patch")
        self.usable = np.array([i for i in range(len(self.sizes)) if i not in set(too_small)])
        areas = np.array([self.sizes[i][0] * self.sizes[i][1] for i in self.usable], dtype=np.float64)
        # Sampling in proportion to area makes every pixel equally likely to be seen.
        self.weights = np.cumsum(areas / areas.sum())

    def _decode(self, path: Path) -> np.ndarray | None:
        try:
            pixels = read_image(path).pixels
        except ImageReadError as exc:
            self.skipped.append(str(exc))
            return None
        self._note(pixels)
        return np.ascontiguousarray(pixels)

    def _note(self, pixels: np.ndarray) -> None:
        self._dtypes.add(pixels.dtype.type)
        self._channels.add(pixels.shape[2])

    def _build_subimages(self, cache_dir: Path, tile: int) -> list[np.ndarray]:
        step = tile // 2
        arrays = []
        for f in self.files:
            key = hashlib.sha1(f"{f.resolve()}:{f.stat().st_mtime_ns}:{tile}".encode()).hexdigest()[:16]
            folder = cache_dir / key
            done = folder / "done"
            if not done.exists():
                image = self._decode(f)
                if image is None:
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                h, w = image.shape[:2]
                ys = sorted({*range(0, max(h - tile, 0) + 1, step), max(h - tile, 0)})
                xs = sorted({*range(0, max(w - tile, 0) + 1, step), max(w - tile, 0)})
                for y in ys:
                    for x in xs:
                        tmp = folder / f".{y}_{x}.npy.tmp"
                        with open(tmp, "wb") as fh:
                            np.save(fh, image[y : y + tile, x : x + tile])
                        os.replace(tmp, folder / f"{y}_{x}.npy")
                done.touch()
            tiles = [np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))]
            if tiles:
                self._note(tiles[0])  # a cache built by an earlier run decodes nothing
            arrays += tiles
        return arrays

    def __len__(self) -> int:
        return len(self.sizes)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as it was decoded (its own depth and channels; see :meth:`patch`)."""
        if self._arrays is not None:
            return self._arrays[index]
        return read_image(self.files[index]).pixels

    def patch(self, index: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        """A crop of image ``index`` in the store's common ``dtype`` and ``channels``."""
        return conform(self.image(index)[y : y + height, x : x + width], self.dtype, self.channels)

    def pick(self, u: float, *, by: str = "area") -> int:
        """The image index for a uniform draw ``u`` in [0, 1): weighted by area (every pixel
        equally likely), or with ``by="image"`` every image equally likely."""
        if by == "image":
            return int(self.usable[min(int(u * len(self.usable)), len(self.usable) - 1)])
        return int(self.usable[min(np.searchsorted(self.weights, u, side="right"), len(self.usable) - 1)])


def _augment(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 dihedral transforms (flips and 90-degree rotations) of an HxWxC patch."""
    if code & 1:
        patch = patch[:, ::-1]
    if code & 2:
        patch = patch[::-1]
    if code & 4:
        patch = patch.transpose(1, 0, 2)
    return patch


MAX_REDRAWS = 10  # a flat image gives up on min_gradient after this many tries
SAMPLINGS = ("area", "image")  # how ImageStore.pick weighs the images


def _check_sampling(sampling: str) -> str:
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be 'area' or 'image', not {sampling!r}")
    return sampling


def mean_gradient(patch: np.ndarray) -> float:
    """Mean absolute difference between vertical plus horizontal neighbours of an HxWxC
    uint8 or uint16 patch, in 8-bit levels (16-bit ones divided by 257), on its green
    channel (a cheap stand-in for luminance): ~0 on a flat or gently graded area, 10-25 on a
    textured photograph."""
    g = patch[..., 1 if patch.shape[-1] >= 3 else 0].astype(np.int32)
    levels = np.abs(g[1:] - g[:-1]).mean() + np.abs(g[:, 1:] - g[:, :-1]).mean()
    return float(levels * 255 / peak_value(patch.dtype))


class HRPatchDataset(Dataset):
    """Sample ``i``: a random ``patch`` px HR crop, as a (C, P, P) tensor of the store's
    ``dtype`` and ``channels`` (uint8 or uint16; 3, or 1 for a grayscale folder).

    Which image (``sampling``: weighted by ``"area"``, or each ``"image"`` equally), where,
    and which of the 8 flips/rotations are drawn from a generator seeded by ``(seed, i)``:
    the stream is reproducible and resumable. With ``min_gradient``, a crop whose
    :func:`mean_gradient` is below it (a flat patch: sky, a smooth wallpaper gradient, which
    costs a step and teaches upscaling almost nothing) is redrawn, up to ``MAX_REDRAWS`` times.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        patch: int,
        seed: int = 0,
        augment: bool = True,
        sampling: str = "area",
        min_gradient: float | None = None,
    ):
        self.store = store
        self.patch = patch
        self.seed = seed
        self.augment = augment
        self.sampling = _check_sampling(sampling)
        self.min_gradient = min_gradient

    def __len__(self) -> int:  # the stream is endless; the sampler decides how much is read
        return 2**62

    def _crop(self, rng: np.random.Generator) -> np.ndarray:
        index = self.store.pick(rng.random(), by=self.sampling)
        h, w = self.store.sizes[index]
        y = int(rng.integers(0, h - self.patch + 1))
        x = int(rng.integers(0, w - self.patch + 1))
        return self.store.patch(index, y, x, self.patch, self.patch)

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index])
        crop = self._crop(rng)
        if self.min_gradient is not None:
            for _ in range(MAX_REDRAWS):
                if mean_gradient(crop) >= self.min_gradient:
                    break
                crop = self._crop(rng)
        if self.augment:
            crop = _augment(crop, int(rng.integers(0, 8)))
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)  # (C, P, P)


class PairedPatchDataset(Dataset):
    """Aligned random crops from ready-made LR and HR folders (files matched by sorted order
    and stem): sample ``i`` is ``(lr, hr)`` tensors of ``patch // scale`` and ``patch`` px, each
    in its store's dtype (uint8 or uint16) and both with the larger store's channels."""

    def __init__(
        self, lr_store: ImageStore, hr_store: ImageStore, *, scale: int, patch: int, seed: int = 0, augment: bool = True, sampling: str = "area"
    ):
        if len(lr_store) != len(hr_store):
            raise DataError(f"{len(lr_store)} LR images but {len(hr_store)} HR images")
        for i, ((lh, lw), (hh, hw)) in enumerate(zip(lr_store.sizes, hr_store.sizes)):
            if (lh * scale, lw * scale) != (hh - hh % scale, hw - hw % scale):
                raise DataError(f"'{lr_store.files[i]}' is {lw}x{lh}, not 1/{scale} of '{hr_store.files[i]}' ({hw}x{hh})")
        self.lr, self.hr = lr_store, hr_store
        self.scale, self.patch, self.seed, self.augment = scale, patch, seed, augment
        self.sampling = _check_sampling(sampling)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = self.hr.pick(rng.random(), by=self.sampling)
        lp = self.patch // self.scale
        h, w = self.lr.sizes[k]
        y, x = int(rng.integers(0, h - lp + 1)), int(rng.integers(0, w - lp + 1))
        s = self.scale
        channels = max(self.lr.channels, self.hr.channels)
        lr = conform(self.lr.image(k)[y : y + lp, x : x + lp], self.lr.dtype, channels)
        hr = conform(self.hr.image(k)[y * s : (y + lp) * s, x * s : (x + lp) * s], self.hr.dtype, channels)
        if self.augment:
            code = int(rng.integers(0, 8))
            lr, hr = _augment(lr, code), _augment(hr, code)
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)  # noqa: E731
        return to_tensor(lr), to_tensor(hr)


class PatchStreamSampler(Sampler[int]):
    """Indices into an endless patch stream: batch ``b`` of rank ``r`` out of ``world`` gets
    samples ``(b * world + r) * batch_size + j``. It starts at ``start_batch()`` (read when
    iteration begins, so a resumed run continues where its checkpoint left off)."""

    def __init__(self, *, batch_size: int, start_batch=lambda: 0, rank: int = 0, world: int = 1):
        self.batch_size = batch_size
        self.start_batch = start_batch
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[int]:
        b = int(self.start_batch())
        while True:
            first = (b * self.world + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            b += 1


@dataclass
class BenchmarkImage:
    """One benchmark image under the paper protocol: the modcropped HR and its LR, each at
    its own depth (uint8 or uint16). ``lr_file``: the JPEG file the LR was decoded from, when
    a ``jpegQ`` preset made it (what a model chosen per photo may read, as it would a
    photo's header), else None."""

    name: str
    hr: np.ndarray  # (H, W, C) uint8 or uint16, C = 1 or 3
    lr: np.ndarray  # (H / s, W / s, C) uint8 or uint16
    lr_file: bytes | None = None


def _modcropped(path: Path, hr: np.ndarray, scale: int) -> np.ndarray:
    """``hr`` cropped to a multiple of ``scale``; an image smaller than the scale, which
    would leave nothing, is refused as a bad file is."""
    if min(hr.shape[:2]) < scale:
        raise ImageReadError(f"cannot score '{path.name}': {hr.shape[1]}x{hr.shape[0]} is smaller than the scale (x{scale})")
    return modcrop(hr, scale)


def load_benchmark(
    folder: str | os.PathLike,
    scale: int,
    *,
    errors: list[str] | None = None,
    degrade: str | None = None,
    lr_8bit: bool = False,
) -> list[BenchmarkImage]:
    """HR images of ``folder``, modcropped, with LR made by MATLAB bicubic (the paper protocol),
    or by the named degradation preset ``degrade`` (:mod:`superres.data.degradations.presets`).

    A 16-bit image stays 16-bit and its bicubic LR is rounded to the 16-bit grid, so it is
    scored in its own range. With ``lr_8bit`` the LR is then reduced to 8 bits (what an 8-bit
    pipeline would feed the model) while the HR it is scored against keeps its depth.
    The degradation presets (JPEG, noise on the 8-bit grid) work on 8-bit images: with
    ``degrade`` both sides are reduced to 8 bits.

    Unreadable files are skipped; their one-line reasons are appended to ``errors`` when
    given, else the first one raises.
    """
    items = []
    for path in list_images(folder):
        try:
            hr = read_image(path).pixels
            hr = _modcropped(path, to_8bit(hr) if degrade is not None else hr, scale)
        except ImageReadError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            continue
        lr, lr_file = (imresize(hr, 1 / scale), None) if degrade is None else degrade_with_file(hr, scale, degrade, key=path.stem)
        items.append(BenchmarkImage(path.stem, hr, to_8bit(lr) if lr_8bit else lr, lr_file))
    return items


def load_paired_benchmark(hr_folder, lr_folder, scale: int, *, errors: list[str] | None = None) -> list[BenchmarkImage]:
    """HR images with ready-made LR images, matched by file stem (LR stems may carry a
    ``x2``-style suffix, as in the DIV2K and benchmark packs)."""
    lr_by_stem = {}
    for p in list_images(lr_folder):
        stem = p.stem
        for suffix in (f"x{scale}", f"_x{scale}", f"_LR", f"_lr"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        lr_by_stem[stem] = p
    items = []
    for path in list_images(hr_folder):
        try:
            if path.stem not in lr_by_stem:
                raise ImageReadError(f"cannot score '{path.name}': no LR image with its name in '{lr_folder}'")
            hr = _modcropped(path, read_image(path).pixels, scale)
            lr = read_image(lr_by_stem[path.stem]).pixels
            if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
                raise ImageReadError(f"cannot score '{path.name}': LR is {lr.shape[1]}x{lr.shape[0]}, HR {hr.shape[1]}x{hr.shape[0]} at x{scale}")
        except ImageReadError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            continue
        items.append(BenchmarkImage(path.stem, hr, lr))
    return items
