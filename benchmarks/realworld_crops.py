"""A picture of what the real-world models do: crops of Set14 images degraded as real photos
are, upscaled x4 by each model, beside the ground truth.

Run: python benchmarks/realworld_crops.py [--preset real] [--out docs/realworld_crops_x4.png]

Rows: Set14 images (a fixed crop each), their LR made by ``superres eval --degrade PRESET``'s
deterministic degradation. Columns: the models (default: bicubic, the clean flagship,
swiftrep-real, swiftrep-real-gan at strength 0.5 and 1; ``--models`` names others, such as
compact-real and realesrgan-x4plus), and the HR crop. The PSNR of each whole image (Y,
the paper protocol's border) is written under its crop, NIQE of the whole result beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import superres
from superres.data.datasets import load_benchmark
from superres.metrics import niqe, psnr

REPO = Path(__file__).resolve().parent.parent
SET14 = REPO.parent / "shared/datasets/benchmark/Set14"
# The default columns; --models replaces them (NAME or NAME@STRENGTH each).
COLUMNS = ["bicubic", "swiftrep", "swiftrep-real", "swiftrep-real-gan@0.5", "swiftrep-real-gan"]


def column(spec: str) -> tuple[str, str, float | None]:
    """(label, model, strength) of a column named NAME or NAME@STRENGTH."""
    name, _, strength = spec.partition("@")
    return spec, name, float(strength) if strength else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="real", help="jpeg40, noise8, real (superres eval --degrade)")
    parser.add_argument("--images", nargs="+", default=["baboon", "comic", "zebra"])
    parser.add_argument("--crop", type=int, default=120, help="HR crop side in pixels")
    parser.add_argument("--models", nargs="+", default=COLUMNS, help="the columns: registry names, or NAME@STRENGTH")
    parser.add_argument("--out", default=str(REPO / "docs/realworld_crops_x4.png"))
    args = parser.parse_args()
    torch.manual_seed(0)
    columns = [column(spec) for spec in args.models]
    upscalers = {label: superres.load(name, 4, strength=strength, tile=0) for label, name, strength in columns}
    items = {item.name: item for item in load_benchmark(str(SET14), 4, degrade=args.preset)}
    side = args.crop * 2  # each crop shown at twice its size
    labels = [label for label, _, _ in columns] + ["HR"]
    sheet = Image.new("RGB", (side * len(labels), 22 + len(args.images) * (side + 30)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * side + 4, 5), label, fill="black")
    for r, name in enumerate(args.images):
        item = items[name]
        lr = item.lr
        h, w = item.hr.shape[:2]
        y, x = (h - args.crop) // 2 // 4 * 4, (w - args.crop) // 2 // 4 * 4
        top = 22 + r * (side + 30)
        for c, label in enumerate(labels):
            if label == "HR":
                result, caption = item.hr, name
            else:
                result = upscalers[label].upscale(lr)
                caption = f"{psnr(result, item.hr, shave=4):.2f} dB  NIQE {niqe(result):.1f}"
            crop = result[y : y + args.crop, x : x + args.crop]
            sheet.paste(Image.fromarray(crop).resize((side, side), Image.NEAREST), (c * side, top))
            draw.text((c * side + 4, top + side + 6), caption, fill="black")
            print(name, label, caption, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
