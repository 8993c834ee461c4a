"""Make the 16-bit grayscale data set of docs/SCIENTIFIC.md from the training photographs.

    python benchmarks/scans16.py ../shared/datasets/train/hr runs/scans16

What it is, honestly: not scans. Each photograph's luma (BT.601 Y, computed in float from
its 8-bit RGB) is downscaled x0.5 with MATLAB bicubic in float, so that every pixel averages
several 8-bit ones and takes values between the 8-bit levels, then mapped onto a 12-bit range
(0-4095, as CT and MR scanners store their 12-bit samples in 16-bit words) and saved as a
16-bit grayscale PNG. Natural-image content at a 12-bit depth in a 16-bit container: what an
8-bit pipeline reduces to 17 levels (round(x / 257)), and what a 16-bit one keeps whole.

Every eighth photograph (sorted by name) goes to ``heldout/``, the rest to ``train/``.
Set5 and Set14 are not used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from superres.data.datasets import list_images
from superres.imaging.color import rgb_to_y
from superres.imaging.io import ImageData, read_image, write_image
from superres.imaging.resize import imresize

BITS_STORED = 12


def scan_like(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1) uint16 on 0..2^12-1 from (H, W, C) uint8/uint16 photograph pixels."""
    y = rgb_to_y(pixels) if pixels.shape[2] == 3 else pixels[..., 0].astype(np.float64) * 219 / 255 + 16
    unit = (y - 16.0) / 219.0  # 0..1
    small = imresize(unit, 0.5)
    top = 2**BITS_STORED - 1
    return np.rint(np.clip(small, 0, 1) * top).astype(np.uint16)[..., None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos")
    parser.add_argument("output")
    parser.add_argument("--every", type=int, default=8, help="every N-th photo is held out (default 8)")
    args = parser.parse_args()
    out = Path(args.output)
    counts = {"train": 0, "heldout": 0}
    for i, path in enumerate(list_images(args.photos)):
        part = "heldout" if i % args.every == 0 else "train"
        (out / part).mkdir(parents=True, exist_ok=True)
        write_image(out / part / f"{path.stem}.png", ImageData(pixels=scan_like(read_image(path).pixels)))
        counts[part] += 1
    print(f"wrote {counts['train']} training and {counts['heldout']} held-out 16-bit images to {out}")


if __name__ == "__main__":
    main()
