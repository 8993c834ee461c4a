"""Speed of the shipped int8 graphs against the same model in fp32 and bf16, in one run.

Run: python benchmarks/int8_speed.py [--threads 2] [--side 256] [--repeat 5] [--out docs/benchmarks]

For every shipped model that has an int8 graph (``--backend onnx-int8``, written only where
int8 changes Set5 by 0.05 dB or less), the network alone on one ``--side`` square RGB input
(the demo photo, mirrored to fit), untiled, best of ``--repeat``, as output megapixels per
second: PyTorch fp32, PyTorch bf16 (where the CPU runs it fast), ONNX Runtime fp32 and ONNX
Runtime int8, each as a ratio to PyTorch fp32 measured in the same run, with the Set5 PSNR
change recorded in the weight file. Prints the CPU's capability beside the figures (int8
convolutions are fast with AVX-512 VNNI; bf16 with AVX-512 BF16). Writes
``int8_speed.json`` into ``--out``. Timings need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from inference_speed import _best_of, _test_image  # this folder, on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent


def _megapixels_per_second(runner, side: int, scale: int, repeat: int) -> float:
    """The runner on one ``side`` square input (inference_speed's test image), best of ``repeat``."""
    import numpy as np

    x = np.ascontiguousarray(_test_image(side, side).transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    return side * side * scale * scale / 1e6 / _best_of(lambda: runner(x), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", type=int, default=256, help="side of the square LR input (default: 256)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    args = parser.parse_args()

    import torch

    from superres.device import bf16_is_fast, cpu_capability
    from superres.inference import load
    from superres.models import read_metadata
    from superres.models.registry import quantized_path
    from superres.zoo_report import shipped_models

    torch.set_num_threads(args.threads)
    capability = cpu_capability()
    print(f"{args.side}x{args.side} input, {args.threads} threads, CPU capability {capability}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    rows = []
    for name, scale, path in shipped_models():
        if not quantized_path(name, scale).exists():
            continue
        change = read_metadata(path).get("precision", {})
        runs = {"torch fp32": dict(backend="torch", precision="fp32"), "onnx fp32": dict(backend="onnx"), "onnx int8": dict(backend="onnx-int8")}
        if bf16_is_fast("cpu"):
            runs["torch bf16"] = dict(backend="torch", precision="bf16")
        speeds = {}
        for label, options in runs.items():
            upscaler = load(name, scale, device="cpu", threads=args.threads, **options)
            speeds[label] = _megapixels_per_second(upscaler.runner, args.side, scale, args.repeat)
        base = speeds["torch fp32"]
        row = {"model": name, "scale": scale, "mp_per_s": {k: round(v, 3) for k, v in speeds.items()},
               "ratio_to_torch_fp32": {k: round(v / base, 3) for k, v in speeds.items()},
               "set5_change_db": {k: v.get("Set5") for k, v in change.items()}}
        rows.append(row)
        cells = "  ".join(f"{k} {v:.2f} ({v / base:.2f}x)" for k, v in speeds.items())
        print(f"{name} x{scale}: {cells}; Set5 change bf16 {row['set5_change_db'].get('bf16')}, int8 {row['set5_change_db'].get('int8')} dB")
    result = {"command": " ".join(["python", "benchmarks/int8_speed.py", *sys.argv[1:]]), "cpu_capability": capability,
              "threads": args.threads, "side": args.side, "cores": os.cpu_count(), "torch": torch.__version__, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "int8_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'int8_speed.json'}")


if __name__ == "__main__":
    main()
