"""Which model for which photo: every x4 model on clean and degraded Set14 inputs, one run.

Run: python benchmarks/realworld_quality.py [--models bicubic swiftrep swiftrep-real] [--scale 4] [--json out.json]

Rows: the models. Columns: PSNR on clean bicubic Set5 and Set14 (the paper protocol), then
on Set14 inputs degraded by the fixed presets of ``superres eval --degrade`` (jpeg40: the
bicubic LR saved at JPEG quality 40; noise8: Gaussian noise of sigma 8; real: Real-ESRGAN's
second-order model, seeded by the image's name), NIQE of the results on each degraded set
(lower is more natural), and speed in output megapixels per second on a 256x256 input (one
thread pair, fp32 and the model's best of bf16 where the CPU has fast bf16), with the CPU
capability printed. Each number is also what ``superres eval -m MODEL --data ... -s 4
--degrade PRESET --niqe`` prints.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from superres import evaluate
from superres.inference.upscaler import Upscaler
from superres.models import load_for_scale
from superres.models.pretrained import load_blended


def loader(name: str):
    """A model by name, or NAME@STRENGTH: a perceptual model blended toward its fidelity partner."""
    if "@" in name:
        base, strength = name.split("@")
        return lambda s: load_blended(base, s, float(strength))
    return lambda s: load_for_scale(name, s)

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared/datasets/benchmark"


def speed(name: str, scale: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    lr = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    out = {}
    for precision in ("fp32", "bf16"):
        upscaler = Upscaler(loader(name)(scale), scale=scale, name=name, device="cpu", precision=precision, tile=0)
        upscaler.upscale(lr)
        t0 = time.perf_counter()
        for _ in range(3):
            upscaler.upscale(lr)
        out[precision] = 3 * (256 * scale) ** 2 / 1e6 / (time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bicubic", "swiftrep", "swiftrep-real"], help="names, or NAME@STRENGTH (swiftrep-real-gan@0.5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--presets", nargs="+", default=["jpeg40", "noise8", "real"], help="superres eval --degrade presets, e.g. jpeg90 jpeg75")
    parser.add_argument("--no-speed", action="store_true", help="scores only")
    parser.add_argument("--no-clean", action="store_true", help="skip the clean Set5/Set14 columns")
    parser.add_argument("--json")
    args = parser.parse_args()
    capability = torch.backends.cpu.get_cpu_capability()
    scale = args.scale
    print(f"CPU capability: {capability}, {args.threads} threads; x{scale}; PSNR on Y (dB), NIQE on Set14-real results")
    set5, set14 = str(BENCH / "Set5"), str(BENCH / "Set14")
    rows = {}
    for name in args.models:
        model = loader(name)
        row = {}
        for r in [] if args.no_clean else evaluate.evaluate(model, [set5, set14], [scale]):
            row[f"{r.dataset} clean"] = r.psnr
        for preset in args.presets:
            r = evaluate.evaluate(model, [set14], [scale], degrade=preset, with_niqe=True)[0]
            row[f"Set14 {preset}"] = r.psnr
            row[f"NIQE Set14 {preset}"] = r.niqe
        row.update({f"MP/s {k}": v for k, v in speed(name, scale, args.threads).items()} if name != "bicubic" and not args.no_speed else {})
        rows[name] = row
        print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    print("\n| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" if c in row else "-" for c in columns) + " |")
    if "bicubic" in rows:
        print("\ngain over bicubic (dB):")
        for name, row in rows.items():
            print(f"  {name:16s} " + "  ".join(f"{c}: {row[c] - rows['bicubic'][c]:+.2f}" for c in columns if c.startswith("Set") and c in row))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_capability": capability, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
