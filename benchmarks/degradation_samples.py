"""A picture of what the real-world models train on: HR patches and LR patches made from them
by Real-ESRGAN's second-order degradation model (superres.data.degradations.second_order).

Run: python benchmarks/degradation_samples.py [--out docs/degradations_x4.png]

Each row is one 192 px HR patch of a training photo, then five LR patches (x4, shown
enlarged by pixel repetition) from five seeds: blur, resizing, noise, JPEG blocks and
ringing in changing mixes. A header row names the columns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from superres.data.degradations import SecondOrder, second_order_lr
from superres.data.datasets import list_images
from superres.imaging.io import read_image

REPO = Path(__file__).resolve().parent.parent


def header(width: int) -> np.ndarray:
    """A white band naming the columns, so that the picture reads without this script."""
    band = Image.new("RGB", (width, 26), "white")
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default(size=13)
    labels = ["HR patch (192 px)"] + [f"LR x4, draw {i} (shown x4)" for i in range(1, 6)]
    for i, label in enumerate(labels):
        draw.text((i * 196 + 96, 13), label, fill="black", font=font, anchor="mm")
    return np.asarray(band)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/train/hr"))
    parser.add_argument("--out", default=str(REPO / "docs/degradations_x4.png"))
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args()
    paths = list_images(args.data)
    rng = np.random.default_rng(0)
    rows = []
    for path in [paths[i] for i in rng.choice(len(paths), args.rows, replace=False)]:
        image = read_image(path).pixels[..., :3]
        y, x = (image.shape[0] - 192) // 2, (image.shape[1] - 192) // 2
        hr = image[y : y + 192, x : x + 192]
        batch = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1)[None].float().repeat(5, 1, 1, 1) / 255
        lr = second_order_lr(batch, 4, SecondOrder(), torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        tiles = [hr] + [np.repeat(np.repeat((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), 4, 0), 4, 1) for t in lr]
        gap = np.full((192, 4, 3), 255, np.uint8)
        rows.append(np.concatenate([c for t in tiles for c in (t, gap)][:-1], axis=1))
    sheet = np.concatenate([header(rows[0].shape[1])] + [c for r in rows for c in (r, np.full((4, rows[0].shape[1], 3), 255, np.uint8))][:-1], axis=0)
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
