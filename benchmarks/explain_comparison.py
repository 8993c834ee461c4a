"""Local Attribution Maps of the shipped x4 models on one Set14 image, side by side, with their
Diffusion Index; and the time of one map on a 256 px input with the default model.

    python benchmarks/explain_comparison.py            # -> docs/explain_x4.png, docs/benchmarks/explain_comparison.json

The setting is the paper's (Gu and Dong, CVPR 2021): a 256x256 HR crop, its 64x64 LR made by
MATLAB bicubic (the paper protocol, rounded to 8 bits), a 16x16 box in the middle of the
result, 50 path steps from a Gaussian blur of sigma 1.2. The crop is barbara's striped scarf
beside her face: stripes are what the paper found networks reach furthest for.

The timing run explains a 16x16 box in the middle of the result of a 256x256 LR crop of
Set14's baboon with SwiftRep x4 and one thread, as ``superres explain`` does by default; the
machine's load average is recorded beside it, since this 2-core VM is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from superres.attribution import Box, explain, heatmap_overlay
from superres.imaging.resize import imresize
from superres.options import DEFAULT_MODEL
from superres.models import load_for_scale, pretrained_path

REPO = Path(__file__).resolve().parents[1]
SET14 = Path(os.environ.get("SUPERRES_SHARED", REPO.parent / "shared")) / "datasets" / "benchmark" / "Set14"
SCALE = 4
CROP = (330, 140)  # top-left of the 256x256 HR crop of barbara: the scarf's stripes and her face
HR_SIZE = 256
WINDOW = 16  # the paper's box, in output pixels
MODELS = ["bicubic", "fsrcnn", "espcn", "swiftrep"]


def _lr_crop(name: str, left: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(SET14 / name) as im:
        hr = np.asarray(im.convert("RGB"))[top : top + HR_SIZE, left : left + HR_SIZE]
    return hr, imresize(hr, 1 / SCALE)  # uint8 in, uint8 out: rounded as the paper protocol does


def compare(steps: int) -> tuple[list[dict], np.ndarray, np.ndarray, list]:
    hr, lr = _lr_crop("barbara.png", *CROP)
    middle = HR_SIZE // 2 - WINDOW // 2
    box = Box(middle, middle, WINDOW, WINDOW)
    rows, results = [], []
    for name in MODELS:
        if name != "bicubic" and not pretrained_path(name, SCALE).is_file():
            print(f"skipping {name}: no shipped x{SCALE} weights", file=sys.stderr)
            continue
        result = explain(load_for_scale(name, SCALE), lr, box, steps=steps)
        results.append(result)
        rows.append(
            {
                "model": name,
                "diffusion_index": result.diffusion_index,
                "outside_share": result.outside_share,
                "completeness_error": result.completeness_error,
                "region": list(result.region),
                "seconds": round(result.seconds, 2),
            }
        )
        print(f"{name:10s} DI {result.diffusion_index:6.2f}  outside {result.outside_share:6.1%}  "
              f"completeness {result.completeness_error:.1e}  {result.seconds:.1f} s")
    return rows, hr, lr, results


def time_256(steps: int) -> dict:
    # 256 px of input (not of HR): the target is a 256 px image to be upscaled.
    with Image.open(SET14 / "baboon.png") as im:
        lr = np.asarray(im.convert("RGB"))[:256, :256]
    middle = 256 * SCALE // 2 - WINDOW // 2
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = explain(DEFAULT_MODEL, lr, Box(middle, middle, WINDOW, WINDOW), scale=SCALE, steps=steps)
    seconds = time.perf_counter() - started
    print(f"256 px input, {DEFAULT_MODEL} x{SCALE}, {steps} steps, 1 thread: {seconds:.1f} s "
          f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; window {result.region})")
    return {
        "model": DEFAULT_MODEL, "scale": SCALE, "input": "Set14 baboon, LR pixels [0:256, 0:256]", "steps": steps,
        "threads": torch.get_num_threads(), "seconds": round(seconds, 2), "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2), "region": list(result.region),
    }


def picture(hr: np.ndarray, lr: np.ndarray, results: list, path: Path) -> None:
    """Top row: the whole crop; bottom row: the 24x24 LR pixels around the box, enlarged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    zoom = HR_SIZE // lr.shape[0]
    box = results[0].box
    near = 12  # LR pixels each side of the box's centre in the bottom row
    cy, cx = (box.y + box.height // 2) // SCALE, (box.x + box.width // 2) // SCALE
    rows, cols = slice(cy - near, cy + near), slice(cx - near, cx + near)
    hr_rows, hr_cols = slice(rows.start * SCALE, rows.stop * SCALE), slice(cols.start * SCALE, cols.stop * SCALE)
    # The box is drawn as a line between pixels (in HR pixels of each panel), so the ring of
    # input pixels next to it, where much of the attribution lies, stays visible.
    x0, y0 = box.x, box.y
    top = [("HR crop (Set14 barbara)\nthe 16x16 box in cyan", hr, (x0, y0)), ("LR input, 64x64\n(the model's input)", _enlarge(lr, zoom), (x0, y0))]
    near_box = (x0 - hr_cols.start, y0 - hr_rows.start)
    bottom = [("HR around the box", _enlarge(hr[hr_rows, hr_cols], 2), near_box), ("LR around the box", _enlarge(lr[rows, cols], 2 * SCALE), near_box)]
    for result in results:
        overlay = heatmap_overlay(lr, result, outline=False)
        top.append((f"{result.model}: Diffusion Index {result.diffusion_index:.2f}\n{result.outside_share:.0%} outside the box's input area", _enlarge(overlay, zoom), (x0, y0)))
        bottom.append((f"{result.model}, around the box", _enlarge(overlay[rows, cols], 2 * SCALE), near_box))
    fig, axes = plt.subplots(2, len(top), figsize=(2.7 * len(top), 6.6), dpi=110)
    for row, (panels, hr_side) in enumerate(((top, HR_SIZE), (bottom, 2 * near * SCALE))):
        for ax, (title, image, (bx, by)) in zip(axes[row], panels):
            ax.imshow(image, interpolation="nearest")
            factor = image.shape[0] / hr_side  # panel pixels per HR pixel
            ax.add_patch(Rectangle((bx * factor - 0.5, by * factor - 0.5), box.width * factor, box.height * factor, fill=False, edgecolor="#00e6ff", linewidth=1.2))
            ax.set_title(title, fontsize=8.5)
            ax.set_axis_off()
    fig.suptitle(
        "Local Attribution Maps at x4: which input pixels each model's 16x16 output box came from "
        "(50 path steps; colour on a log scale over 3 decades, grey = exactly zero)",
        fontsize=9.5,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    return np.kron(image, np.ones((factor, factor, 1), dtype=image.dtype))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1, as superres explain)")
    parser.add_argument("--picture", default=str(REPO / "docs" / "explain_x4.png"))
    parser.add_argument("--json", default=str(REPO / "docs" / "benchmarks" / "explain_comparison.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, hr, lr, results = compare(args.steps)
    picture(hr, lr, results, Path(args.picture))
    timing = time_256(args.steps)
    Path(args.json).write_text(json.dumps({"image": "Set14 barbara, HR crop at (330, 140), 256x256; LR 64x64", "box": str(results[0].box), "models": rows, "timing_256px": timing}, indent=2) + "\n")
    print(f"wrote {args.json}")
    print("\n| model | Diffusion Index | outside the box's input area | completeness error |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['diffusion_index']:.2f} | {row['outside_share']:.1%} | {row['completeness_error']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
