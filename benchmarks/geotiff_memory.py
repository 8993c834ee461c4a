"""Peak memory and time of ``superres upscale`` on a large GeoTIFF (docs/SCIENTIFIC.md).

    python benchmarks/geotiff_memory.py --size 10000 --bands 3 --model bicubic --dir /tmp

Writes a ``size`` x ``size`` x ``bands`` uint16 GeoTIFF (a deterministic texture, window by
window, tiled and DEFLATE-compressed), runs ``superres upscale -s 2`` on it in a child
process, and reports the child's peak resident memory (``ru_maxrss``), its wall time, the
result's size and whether its bounds equal the input's. The files are deleted afterwards
(unless ``--keep``): at 10,000 px the result is 20,000 x 20,000 x 3 uint16, 2.4 GB of samples.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_scene(path: Path, size: int, bands: int) -> None:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=bands, dtype="uint16", crs="EPSG:32633",
        transform=from_origin(400000.0, 5000000.0, 10.0, 10.0), nodata=0, tiled=True, compress="deflate", predictor=2,
    ) as ds:
        x = np.arange(size, dtype=np.float32)[None] / 97.0
        for top in range(0, size, 512):
            rows = np.arange(top, min(top + 512, size), dtype=np.float32)[:, None] / 89.0
            planes = [
                np.rint(20000 + 12000 * np.sin(x * (1 + b) + rows) * np.cos(rows * 0.7 - x * 0.3) + 3000 * np.sin(x * 9.1 * (b + 1))).astype(np.uint16)
                for b in range(bands)
            ]
            ds.write(np.stack(planes), window=Window(0, top, size, len(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--bands", type=int, default=3)
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    import rasterio
    import torch

    folder = Path(args.dir)
    source, output = folder / f"scene{args.size}.tif", folder / f"scene{args.size}_x{args.scale}.tif"
    start = time.perf_counter()
    write_scene(source, args.size, args.bands)
    written = time.perf_counter() - start
    command = [sys.executable, "-m", "superres", "upscale", str(source), "-m", args.model, "-s", str(args.scale),
               "--threads", str(args.threads), "-o", str(folder)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        if done.returncode != 0:
            raise SystemExit(f"upscale failed: {done.stderr.strip()[-500:]}")
        with rasterio.open(source) as a, rasterio.open(output) as b:
            result = {
                "input": f"{a.width}x{a.height}x{a.count} {a.dtypes[0]}",
                "output": f"{b.width}x{b.height}x{b.count} {b.dtypes[0]}",
                "output_samples_gb": round(b.width * b.height * b.count * np.dtype(b.dtypes[0]).itemsize / 1e9, 2),
                "output_file_gb": round(output.stat().st_size / 1e9, 2),
                "bounds_equal": a.bounds == b.bounds,
                "crs_equal": a.crs == b.crs,
                "peak_rss_mb": round(peak_mb),
                "upscale_seconds": round(seconds, 1),
                "input_write_seconds": round(written, 1),
                "model": args.model,
                "threads": args.threads,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "command": " ".join(["superres", *command[3:]]),
            }
    finally:
        if not args.keep:
            source.unlink(missing_ok=True)
            output.unlink(missing_ok=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
