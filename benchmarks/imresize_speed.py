"""MATLAB-bicubic imresize: the numpy reference against the batched torch version.

Run: python benchmarks/imresize_speed.py [--threads N] [--repeat R]
Prints the time per batch of 16 x 3 x 192 x 192 uint8 patches at scale 1/4 (what training
does for every x4 batch) for each, their ratio, and the largest difference between them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from superres.imaging.resize import imresize, imresize_torch


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (16, 3, 192, 192), dtype=np.uint8)
    hwc = [im.transpose(1, 2, 0) for im in batch]
    tensor = torch.from_numpy(batch)

    def run_numpy():
        return [imresize(im, args.scale) for im in hwc]

    def run_torch():
        return imresize_torch(tensor, args.scale)

    run_torch()  # builds and caches the weight matrices, as the first training step does
    numpy_s = best_of(run_numpy, args.repeat)
    torch_s = best_of(run_torch, args.repeat)
    ref = np.stack([o.transpose(2, 0, 1) for o in run_numpy()]).astype(int)
    diff = np.abs(run_torch().numpy().astype(int) - ref).max()
    print(f"batch 16x3x192x192 uint8, scale {args.scale}, {args.threads} thread(s), best of {args.repeat}")
    print(f"numpy (reference, float64 gather): {numpy_s * 1e3:8.2f} ms")
    print(f"torch (float32, banded products):  {torch_s * 1e3:8.2f} ms")
    print(f"speed-up torch / numpy:            {numpy_s / torch_s:8.1f}x")
    print(f"max |torch - numpy| (uint8):       {diff}")


if __name__ == "__main__":
    main()
