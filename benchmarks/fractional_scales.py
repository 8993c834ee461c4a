"""How to reach a scale no model was trained for: measured on Set14 under the paper protocol.

Run: python benchmarks/fractional_scales.py [--model swiftrep] [--scales 1.5 2.5 3]

For each factor s the HR image is cropped to a size that s divides, its LR made by MATLAB
bicubic (antialiased) at 1/s, and the result must have exactly the HR's size. Methods:

- ``bicubic``: MATLAB bicubic from LR to the HR size (the baseline of the ratios);
- ``above+down``: the model of the next integer scale above s, then an antialiased MATLAB
  bicubic downscale to the HR size;
- ``below+up``: the model of the next integer scale below s (when there is one above 1),
  then MATLAB bicubic up to the HR size;
- ``exact``: the model trained at s, where one exists.

PSNR on Y with ceil(s) pixels shaved, the mean over the images.
"""

from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from superres.data.datasets import list_images
from superres.imaging.io import read_image
from superres.imaging.resize import imresize
from superres.inference.upscaler import Upscaler
from superres.metrics import psnr
from superres.models import get_spec, load_for_scale

REPO = Path(__file__).resolve().parent.parent


def crop_for(image: np.ndarray, scale: float) -> np.ndarray:
    """The top-left crop whose sides ``scale`` divides into whole LR pixels."""
    step = Fraction(scale).limit_denominator(100).numerator
    h, w = image.shape[:2]
    return image[: h - h % step, : w - w % step]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/benchmark/Set14"))
    parser.add_argument("--model", default="swiftrep")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.5, 2.5, 3.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads")
    shipped = get_spec(args.model).pretrained_scales()
    upscalers = {s: Upscaler(load_for_scale(args.model, s), scale=s, name=args.model, device="cpu") for s in shipped}
    images = [read_image(p).pixels[..., :3] for p in list_images(args.data)]
    images = [np.repeat(i, 3, axis=2) if i.ndim == 3 and i.shape[2] == 1 else i for i in images]
    results = {}
    for s in args.scales:
        methods: dict[str, list[float]] = {}
        above = min((m for m in shipped if m > s), default=None)
        below = max((m for m in shipped if 1 < m < s), default=None)
        for hr in images:
            hr = crop_for(hr, s)
            size = hr.shape[:2]
            lr = imresize(hr, size=(round(size[0] / s), round(size[1] / s)))
            shave = math.ceil(s)
            candidates = {"bicubic": imresize(lr, size=size)}
            if above is not None:
                candidates[f"above+down (x{above})"] = imresize(upscalers[above].upscale(lr), size=size)
            if below is not None:
                candidates[f"below+up (x{below})"] = imresize(upscalers[below].upscale(lr), size=size)
            if s in upscalers:
                candidates[f"exact (x{int(s)})"] = upscalers[int(s)].upscale(lr)
            for name, sr in candidates.items():
                methods.setdefault(name, []).append(psnr(sr, hr, shave=shave))
        results[s] = {name: float(np.mean(v)) for name, v in methods.items()}
        base = results[s]["bicubic"]
        print(f"x{s:g}  ({len(images)} images, model {args.model})")
        for name, value in results[s].items():
            print(f"  {name:22s} {value:6.2f} dB  {value - base:+5.2f} dB over bicubic")
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
