"""Inference speed, memory and precision loss of the shipped models, against bicubic, in one run.

Run: python benchmarks/inference_speed.py [--quick] [--out docs/benchmarks] [--models NAME ...]

What it measures, each configuration in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own:

1. Each shipped model (those with weight files; without any, the registry's swiftrep, espcn
   and fsrcnn with random weights, which the output says) at x2 and x4, on a 256 x 256 RGB
   input, for every backend and precision: PyTorch fp32, PyTorch bf16 (autocast; only where
   the CPU has AVX-512 BF16 or AMX), ONNX Runtime fp32; each with 1 and 2 threads. Speed is
   output megapixels per second (best of 3 after a warm-up); memory is the peak RSS above
   the process's RSS once the model is loaded.
2. Bicubic in the same run, as the baseline of the printed ratios: ours (MATLAB imresize,
   the numpy reference and the batched torch version) and Pillow's ``Image.BICUBIC``.
3. The PSNR on Set5 (paper protocol) of every backend/precision, and its change from PyTorch
   fp32: the fastest configuration that loses at most 0.05 dB is printed per model.
4. The peak RSS of upscaling a 3840 x 2160 image x4 with tiling (the flagship, or the first
   model), alone in its subprocess, as ``superres upscale`` does it (uint8 in and out).

5. Small images, the way users meet them (``--pipeline-only`` runs this part alone, into
   ``inference_pipeline.json``): a folder of BSD100-size inputs (120 x 80 LR, 480 x 320 output
   at x4: centre crops of the training photos, MATLAB-bicubic downscaled; never Set5/Set14)
   per model, backend and precision (``auto`` = what ``superres upscale`` picks): the
   network alone (the model's forward pass on the model's input, one image per call),
   the Python API (``Upscaler.upscale`` on each decoded image, ``upscale_batch`` on the
   whole folder, and ``upscale_many``, which runs small images in lanes of one thread each,
   :mod:`superres.inference.lanes`), the network alone in those same lanes (so that the
   ratio of ``upscale_many`` to it is the work around the network, not the lanes' gain),
   the API on one 1 MP output (256 x 256 LR), and the command line on the
   folder (files in and out, process start included); output megapixels per second, each
   with its ratio to the network alone, and the CPU capability beside them.

It writes ``inference_speed.json`` and plots (``inference_speed.png``, ``inference_memory.png``,
``inference_tradeoff.png``) into ``--out``. ``--quick`` (tiny inputs, one model, two Set5
images, a 480 x 270 "4K" image, results into a temporary folder unless --out is given) only
checks that everything runs: its numbers mean nothing. Timings need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SET5 = REPO.parent / "shared" / "datasets" / "benchmark" / "Set5"
TRAIN = REPO.parent / "shared" / "datasets" / "train" / "hr"
PIPELINE_MODELS = ["espcn", "swiftrep"]
FALLBACK_MODELS = ["swiftrep", "espcn", "fsrcnn"]
SCALES = [2, 4]
THREADS = [1, 2]
MAX_PSNR_LOSS = 0.05  # dB


# --------------------------------------------------------------------------- worker side


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _test_image(height: int, width: int):
    """A natural-looking uint8 RGB image of any size: the bundled demo photo, mirrored to fit."""
    import numpy as np

    from superres.imaging import read_image

    demo = read_image(REPO / "src" / "superres" / "assets" / "demo.png").pixels
    tile = np.concatenate([demo, demo[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:height, :width])


def _upscaler(config: dict, **options):
    import torch

    from superres.inference import Upscaler, load
    from superres.models import create

    if config["shipped"]:
        return load(config["model"], config["scale"], **options)
    torch.manual_seed(0)
    model = create(config["model"], scale=config["scale"])
    return Upscaler(model, scale=config["scale"], name=config["model"], **options)


def _best_of(fn, repeat: int) -> float:
    fn()  # warm-up: allocations, kernel selection, ORT's arena
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _set5_psnr(upscaler, scale: int, limit: int | None) -> float | None:
    import numpy as np

    from superres.data.datasets import load_benchmark
    from superres.metrics import psnr

    if not SET5.is_dir():
        return None
    items = load_benchmark(SET5, scale)[:limit]
    return float(np.mean([psnr(upscaler.upscale(item.lr), item.hr, shave=scale) for item in items]))


def worker_model(config: dict) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(max(config["threads"]))
    size = config["size"]
    image = _test_image(size, size).astype(np.float32) / 255
    result = {"speed_mpx_s": {}}
    upscalers = {}
    for threads in config["threads"]:
        upscalers[threads] = _upscaler(config, device="cpu", tile=0, precision=config["precision"], backend=config["backend"], threads=threads)
    base_rss = _rss_mb()
    out_mpx = (size * config["scale"]) ** 2 / 1e6
    for threads, upscaler in upscalers.items():
        torch.set_num_threads(threads)
        seconds = _best_of(lambda: upscaler.upscale(image), config["repeat"])
        result["speed_mpx_s"][str(threads)] = out_mpx / seconds
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_above_loaded_mb"] = _peak_rss_mb() - base_rss
    torch.set_num_threads(max(config["threads"]))
    result["set5_psnr"] = _set5_psnr(upscalers[max(config["threads"])], config["scale"], config["set5_limit"])
    return result


def worker_bicubic(config: dict) -> dict:
    import torch
    from PIL import Image

    from superres.imaging.resize import imresize, imresize_torch

    size, scale, repeat = config["size"], config["scale"], config["repeat"]
    image = _test_image(size, size)
    out_mpx = (size * scale) ** 2 / 1e6
    pil = Image.fromarray(image)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    speeds = {"pillow": {}, "ours-numpy": {}, "ours-torch": {}}
    for threads in config["threads"]:
        torch.set_num_threads(threads)
        speeds["pillow"][str(threads)] = out_mpx / _best_of(lambda: pil.resize((size * scale, size * scale), Image.BICUBIC), repeat)
        speeds["ours-numpy"][str(threads)] = out_mpx / _best_of(lambda: imresize(image, scale), repeat)
        speeds["ours-torch"][str(threads)] = out_mpx / _best_of(lambda: imresize_torch(tensor, scale), repeat)
    return {"speed_mpx_s": speeds}


def worker_tiled(config: dict) -> dict:
    import torch

    from superres.imaging import ImageData

    torch.set_num_threads(max(config["threads"]))
    height, width = config["height"], config["width"]
    upscaler = _upscaler(config, device="cpu", tile=config["tile"])
    image = ImageData(pixels=_test_image(height, width))
    tile, batch = upscaler.tiling_for(height, width)
    base_rss = _rss_mb()
    start = time.perf_counter()
    out = upscaler.upscale_image_data(image)
    seconds = time.perf_counter() - start
    return {
        "input": [width, height],
        "output": [out.size[1], out.size[0]],
        "tile": tile,
        "batch": batch,
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_above_loaded_mb": _peak_rss_mb() - base_rss,
        "output_uint8_mb": out.pixels.nbytes / 2**20,
    }




# --------------------------------------------------------------------------- driver side


def small_image_folder(folder: Path, count: int) -> Path:
    """``count`` BSD100-size LR inputs (120 x 80 or 80 x 120, alternating) in ``folder``: centre
    crops of 480 x 320 of the training photos, MATLAB-bicubic downscaled by 4."""
    import numpy as np

    from superres.imaging import read_image
    from superres.imaging.io import write_image
    from superres.imaging.pixels import ImageData
    from superres.imaging.resize import imresize

    photos = sorted(TRAIN.glob("*.png"))
    if not photos:
        raise SystemExit(f"no training photos in {TRAIN}")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = read_image(photos[i % len(photos)]).pixels
        pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        h, w = (320, 480) if i % 2 == 0 else (480, 320)
        top, left = (pixels.shape[0] - h) // 2, (pixels.shape[1] - w) // 2
        lr = imresize(np.ascontiguousarray(pixels[top : top + h, left : left + w]), 0.25)
        write_image(folder / f"{i:03d}.png", ImageData(pixels=lr))
    return folder


def worker_pipeline(config: dict) -> dict:
    import numpy as np
    import torch

    from superres.device import cpu_capability
    from superres.imaging import read_image
    from superres.inference.lanes import Lanes

    threads = max(config["threads"])
    torch.set_num_threads(threads)
    images = [read_image(p).pixels for p in sorted(Path(config["folder"]).glob("*.png"))]
    up = _upscaler(config, device="cpu", precision=config["precision"], backend=config["backend"], threads=threads)
    scale = config["scale"]
    out_mpx = sum(im.shape[0] * im.shape[1] for im in images) * scale * scale / 1e6

    # The model's own input for each image: what the network alone is timed on.
    with torch.inference_mode():
        inputs = [torch.rand(1, up.channels, *im.shape[:2]) for im in images]

    def network(i):
        with torch.inference_mode():
            up.runner.forward(inputs[i])

    # The network alone and the API are timed image by image, alternately, each image's
    # time the best of ``repeat``: a busy moment of the machine then costs both alike, and
    # their ratio holds on a machine that is not quite idle.
    network(0), up.upscale(images[0])  # warm-up
    best = {"network": [float("inf")] * len(images), "api": [float("inf")] * len(images)}
    for _ in range(config["repeat"]):
        for i, image in enumerate(images):
            for name, fn in (("network", lambda: network(i)), ("api", lambda: up.upscale(image))):
                start = time.perf_counter()
                fn()
                best[name][i] = min(best[name][i], time.perf_counter() - start)
    big = _test_image(256, 256)
    result = {"precision_used": up.precision, "why": up.precision_reason, "cpu": cpu_capability(), "images": len(images)}
    result["speed_mpx_s"] = {name: out_mpx / sum(times) for name, times in best.items()}
    result["speed_mpx_s"]["api_batch"] = out_mpx / _best_of(lambda: up.upscale_batch(images), config["repeat"])
    result["speed_mpx_s"]["api_many"] = out_mpx / _best_of(lambda: list(up.upscale_many(images)), config["repeat"])

    def network_in_lanes():
        with Lanes(up.lane_count) as lanes:
            for future in [lanes.submit(network, i) for i in range(len(images))]:
                future.result()

    def network_in_a_loop():
        for i in range(len(images)):
            network(i)

    # Back to back, the way a loop over the network alone would time it: PyTorch's threads stay
    # awake between calls, where between API calls they sleep and wake again (per image, above).
    result["speed_mpx_s"]["network_loop"] = out_mpx / _best_of(network_in_a_loop, config["repeat"])
    result["speed_mpx_s"]["network_lanes"] = out_mpx / _best_of(network_in_lanes, config["repeat"])
    result["lanes"] = up.lane_count
    result["speed_mpx_s"]["api_1mp"] = (256 * scale) ** 2 / 1e6 / _best_of(lambda: up.upscale(big), config["repeat"])
    return result


def pipeline(models: list[str], shipped: bool, *, count: int, repeat: int, threads: int) -> dict:
    """Part 5 of the module docstring: the small-image measurements and the command line."""
    from superres.device import cpu_capability

    folder = small_image_folder(Path(tempfile.mkdtemp(prefix="superres-small-")) / "in", count)
    rows = []
    configs = [("torch", "fp32"), ("torch", "auto"), ("onnx", "fp32")]
    print(f"\nsmall images: {count} inputs of 120x80 / 80x120, x4 (0.15 MP out each), {threads} threads, CPU {cpu_capability()}")
    columns = ("api", "network_loop", "network_lanes", "api_many", "api_1mp", "cli_folder", "cli_steady")  # api_batch: in the JSON
    print(f"{'model':10s} {'backend':14s} {'runs in':8s} {'network':>8s} {'API':>15s} {'net loop':>15s} {'net lanes':>15s} {'API many':>15s} {'API 1 MP':>15s} {'CLI folder':>15s} {'CLI steady':>15s}  (output MP/s, x network)")
    for name in models:
        for backend, precision in configs:
            config = {"kind": "pipeline", "model": name, "scale": 4, "shipped": shipped, "backend": backend, "precision": precision,
                      "threads": [threads], "folder": str(folder), "repeat": repeat}
            row = {"model": name, "scale": 4, "backend": backend, "precision": precision, **run_worker(config)}
            if "error" not in row:
                row["speed_mpx_s"]["cli_folder"], row["speed_mpx_s"]["cli_steady"] = _cli_folder(name, folder, backend, precision, threads, row["images"])
                network = row["speed_mpx_s"]["network"]
                row["ratio_to_network"] = {k: v / network for k, v in row["speed_mpx_s"].items()}
                cells = " ".join(f"{row['speed_mpx_s'][k]:7.2f} ({row['ratio_to_network'][k]:4.2f}x)" for k in columns)
                print(f"{name:10s} {_label(backend, precision):14s} {row['precision_used']:8s} {network:8.2f} {cells}")
            else:
                print(f"{name} {_label(backend, precision)}: failed: {row['error']}")
            rows.append(row)
    return {"cpu": cpu_capability(), "threads": threads, "images": count, "rows": rows}


def _cli_folder(name: str, folder: Path, backend: str, precision: str, threads: int, count: int) -> tuple[float, float]:
    """Output MP/s of ``superres upscale`` on the folder: over the wall clock of the whole
    process (start-up included), and steady, between the first and the last file written
    (what a long folder runs at once the process is up)."""
    out = folder.parent / f"out-{name}-{backend}-{precision}"
    command = [sys.executable, "-m", "superres.cli", "upscale", str(folder), "-o", str(out), "-m", name, "-s", "4",
               "--backend", backend, "--precision", precision, "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO, bufsize=1)
    written = [time.perf_counter() - start for line in proc.stdout if line.startswith("wrote ")]
    proc.wait()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return float("nan"), float("nan")
    mpx = 480 * 320 / 1e6
    steady = (len(written) - 1) * mpx / (written[-1] - written[0]) if len(written) > 2 and written[-1] > written[0] else float("nan")
    return count * mpx / seconds, steady


def run_worker(config: dict) -> dict:
    """Run one configuration in a fresh interpreter; its last stdout line is the JSON result."""
    env = dict(os.environ, OMP_NUM_THREADS=str(max(config.get("threads", [1]))))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config)], capture_output=True, text=True, env=env, cwd=REPO
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": reason}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shipped_models(requested: list[str] | None) -> tuple[list[str], bool]:
    """(model names, shipped?): models with weight files at every scale benchmarked, else the fallback."""
    from superres.models import list_specs

    names = [
        spec.name
        for spec in list_specs(generators_only=True)
        if all(s in spec.pretrained_scales() for s in SCALES) and (not requested or spec.name in requested)
    ]
    if names:
        return names, True
    return (requested or FALLBACK_MODELS), False


def configurations(bf16: bool) -> list[tuple[str, str]]:
    configs = [("torch", "fp32")]
    if bf16:
        configs.append(("torch", "bf16"))
    configs.append(("onnx", "fp32"))
    return configs


def _label(backend: str, precision: str) -> str:
    return f"{'PyTorch' if backend == 'torch' else 'ONNX Runtime'} {precision}"


# One colour and one marker per backend/precision, the same in every figure.
STYLE = {("torch", "fp32"): ("tab:blue", "o"), ("torch", "bf16"): ("tab:orange", "s"), ("onnx", "fp32"): ("tab:green", "^")}


def plot(results: dict, out: Path) -> list[Path]:
    """Three figures, one idea each: speed by model and configuration (with bicubic for scale),
    memory by model and configuration, and per model what each configuration trades (speed
    against Set5 PSNR), every point labelled where it is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    rows = [r for r in results["models"] if "error" not in r]
    if not rows:
        return written
    baseline = results["bicubic"]
    labels = sorted({(r["model"], r["scale"]) for r in rows}, key=lambda k: (k[1], k[0]))
    configs = [c for c in STYLE if any((r["backend"], r["precision"]) == c for r in rows)]
    machine = f"{results['machine']['cpu']}, {results['machine']['cores']} cores, {'shipped weights' if results['shipped'] else 'random weights'}"

    def row_for(model, scale, backend, precision):
        return next((r for r in rows if (r["model"], r["scale"], r["backend"], r["precision"]) == (model, scale, backend, precision)), None)

    for metric, filename, ylabel, title in (
        ("speed", "inference_speed.png", "output megapixels per second (log scale)", "Speed of each model, 256 x 256 input; higher is faster"),
        ("memory", "inference_memory.png", "peak memory above the loaded model (MB)", "Memory of each model, 256 x 256 input; lower is better"),
    ):
        panels = [str(t) for t in THREADS] if metric == "speed" else [None]
        fig, axes = plt.subplots(1, len(panels), figsize=(12 if metric == "speed" else 8, 4.8), squeeze=False, sharey=True)
        width = 0.8 / len(configs)
        for ax, threads in zip(axes[0], panels):
            for i, (backend, precision) in enumerate(configs):
                values = []
                for model, scale in labels:
                    row = row_for(model, scale, backend, precision)
                    if row is None:
                        values.append(0)
                    elif metric == "speed":
                        values.append(row["speed_mpx_s"].get(threads, 0))
                    else:
                        values.append(row["peak_above_loaded_mb"])
                ax.bar([x + i * width for x in range(len(labels))], values, width, color=STYLE[(backend, precision)][0], label=_label(backend, precision))
            if metric == "speed":
                # Bicubic as a yardstick: lines labelled where they are drawn, not in a legend.
                for name, shown in (("pillow", "Pillow bicubic"),):
                    for scale in SCALES:
                        speed = baseline.get(str(scale), {}).get("speed_mpx_s", {}).get(name, {}).get(threads)
                        if speed:
                            ax.axhline(speed, color="grey", linestyle="--", linewidth=1)
                            ax.text(len(labels) - 0.5, speed, f"{shown} x{scale}: {speed:.0f}", ha="right", va="bottom", fontsize=8, color="dimgrey")
                ax.set_yscale("log")
                ax.set_title(f"{threads} thread{'s' if threads != '1' else ''}")
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], [f"{m} x{s}" for m, s in labels])
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
        fig.suptitle(f"{title} ({machine})", fontsize=10)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        path = out / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # The trade-off: one small panel per model and scale, its configurations labelled in place.
    traded = [(m, s) for m, s in labels if any(row_for(m, s, *c) and row_for(m, s, *c).get("psnr_change_db") is not None for c in configs)]
    if traded:
        columns = len({m for m, _ in traded})
        scales = sorted({s for _, s in traded})
        models = sorted({m for m, _ in traded})
        fig, axes = plt.subplots(len(scales), columns, figsize=(3.6 * columns, 3.2 * len(scales)), squeeze=False, sharey=True)
        for r, scale in enumerate(scales):
            for c, model in enumerate(models):
                ax = axes[r][c]
                ax.axhline(-MAX_PSNR_LOSS, color="red", linestyle="--", linewidth=1)
                ax.axhline(0, color="grey", linewidth=0.5)
                points = [(row_for(model, scale, *config), config) for config in configs]
                points = [(row, config) for row, config in points if row and row.get("psnr_change_db") is not None]
                for row, config in points:
                    colour, marker = STYLE[config]
                    speed = max(row["speed_mpx_s"].values())
                    ax.scatter(speed, row["psnr_change_db"], color=colour, marker=marker, s=50, zorder=3)
                    # fp32 PyTorch and ONNX both sit at 0 dB, often side by side: one label above, one
                    # below; bf16 (usually the fastest) to its right.
                    offset, align = {("onnx", "fp32"): ((0, -13), "center"), ("torch", "bf16"): ((7, -3), "left")}.get(config, ((0, 7), "center"))
                    ax.annotate(_label(*config).replace(" Runtime", ""), (speed, row["psnr_change_db"]), textcoords="offset points",
                                xytext=offset, ha=align, fontsize=8, color=colour)
                speeds = [max(row["speed_mpx_s"].values()) for row, _ in points] or [1]
                ax.set_xlim(min(speeds) / 1.6, max(speeds) * 2.2)
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                ax.tick_params(axis="x", which="minor", labelsize=7)
                ax.set_title(f"{model} x{scale}", fontsize=10)
                if c == 0:
                    ax.set_ylabel("Set5 PSNR change (dB)")
                if r == len(scales) - 1:
                    ax.set_xlabel("output MP/s (best thread count)")
                ax.grid(alpha=0.3)
        lowest = min(r["psnr_change_db"] for r in rows if r.get("psnr_change_db") is not None)
        axes[0][0].set_ylim(min(lowest, -MAX_PSNR_LOSS) - 0.03, 0.04)
        for ax in axes.flat:
            ax.text(0.02, -MAX_PSNR_LOSS, f"-{MAX_PSNR_LOSS} dB: the most we accept", transform=ax.get_yaxis_transform(),
                    ha="left", va="top", fontsize=7, color="red")
        fig.suptitle(f"What each backend and precision trades, per model: further right is faster, lower loses quality\n"
                     f"(PSNR change against PyTorch fp32; {machine})", fontsize=10)
        fig.tight_layout()
        path = out / "inference_tradeoff.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written

WORKERS = {"model": worker_model, "bicubic": worker_bicubic, "tiled": worker_tiled, "pipeline": worker_pipeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks that it runs, numbers mean nothing")
    parser.add_argument("--out", help="folder for the JSON and the plots (default: docs/benchmarks; --quick: a temporary folder)")
    parser.add_argument("--models", nargs="+", help="limit to these models")
    parser.add_argument("--pipeline-only", action="store_true", help="only part 5 (small images, the API, the CLI), into inference_pipeline.json")
    parser.add_argument("--images", type=int, default=100, help="small images in part 5's folder (default: 100, as BSD100)")
    parser.add_argument("--replot", metavar="JSON", help="only redraw the figures from a saved inference_speed.json (into its folder, or --out)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replot:
        source = Path(args.replot)
        target = Path(args.out) if args.out else source.parent
        target.mkdir(parents=True, exist_ok=True)
        for path in plot(json.loads(source.read_text()), target):
            print(f"wrote {path}")
        return
    if args.worker:
        config = json.loads(args.worker)
        print(json.dumps(WORKERS[config["kind"]](config)))
        return

    from superres.device import supports_bf16
    from superres.options import DEFAULT_MODEL

    import torch

    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="superres-bench-")) if args.quick else REPO / "docs" / "benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    models, shipped = shipped_models(args.models)
    small = [m for m in models if m in PIPELINE_MODELS] or models[:1]
    count = 4 if args.quick else args.images
    if args.pipeline_only:
        results = pipeline(small, shipped, count=count, repeat=1 if args.quick else 3, threads=max(THREADS))
        (out / "inference_pipeline.json").write_text(json.dumps(results, indent=2))
        print(f"\nwrote {out / 'inference_pipeline.json'}")
        return
    if args.quick:
        models = models[:1]
    size, repeat, set5_limit = (48, 1, 2) if args.quick else (256, 3, None)
    # The full run tiles as `superres upscale` would (the tile chosen from free memory); the
    # quick one forces small tiles so that the tiled path runs on its small image.
    tiled_size, tiled_tile = ((270, 480), 128) if args.quick else ((2160, 3840), None)
    bf16 = supports_bf16(torch.device("cpu"))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results = {
        "quick": args.quick,
        "shipped": shipped,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "bf16": bf16, "torch": torch.__version__, "python": platform.python_version()},
        "input_size": size,
        "threads": THREADS,
        "bicubic": {},
        "models": [],
    }
    if not shipped:
        print(f"no shipped weights: benchmarking registry models with random weights ({', '.join(models)}); "
              "speeds and memory are representative, PSNR changes are of untrained models")
    if not bf16:
        print("this CPU has no AVX-512 BF16 / AMX: bf16 is skipped")

    for scale in SCALES:
        results["bicubic"][str(scale)] = run_worker({"kind": "bicubic", "scale": scale, "size": size, "repeat": repeat, "threads": THREADS})
    for name in models:
        for scale in SCALES:
            for backend, precision in configurations(bf16):
                config = {
                    "kind": "model", "model": name, "scale": scale, "shipped": shipped, "backend": backend,
                    "precision": precision, "threads": THREADS, "size": size, "repeat": repeat, "set5_limit": set5_limit,
                }
                row = {"model": name, "scale": scale, "backend": backend, "precision": precision, **run_worker(config)}
                results["models"].append(row)
                if "error" in row:
                    print(f"{name} x{scale} {_label(backend, precision)}: failed: {row['error']}")

    # PSNR change from PyTorch fp32, and the fastest configuration within the allowed loss.
    print(f"\n{'model':10s} {'scale':>5s}  {'backend':18s} " + " ".join(f"{t}T Mpx/s  vs Pillow" for t in THREADS) + "  peak MB  Set5 dB  change")
    for row in results["models"]:
        if "error" in row:
            continue
        reference = next(r for r in results["models"] if (r["model"], r["scale"], r["backend"], r["precision"]) == (row["model"], row["scale"], "torch", "fp32"))
        if row.get("set5_psnr") is not None and reference.get("set5_psnr") is not None:
            row["psnr_change_db"] = row["set5_psnr"] - reference["set5_psnr"]
        else:
            row["psnr_change_db"] = None
        pillow = results["bicubic"][str(row["scale"])].get("speed_mpx_s", {}).get("pillow", {})
        row["ratio_to_pillow"] = {t: s / pillow[t] for t, s in row["speed_mpx_s"].items() if pillow.get(t)}
        ours = results["bicubic"][str(row["scale"])].get("speed_mpx_s", {}).get("ours-torch", {})
        row["ratio_to_our_bicubic"] = {t: s / ours[t] for t, s in row["speed_mpx_s"].items() if ours.get(t)}
        cells = " ".join(f"{row['speed_mpx_s'][str(t)]:9.2f} {row['ratio_to_pillow'].get(str(t), float('nan')):8.3f}x" for t in THREADS)
        psnr = row.get("set5_psnr")
        change = row["psnr_change_db"]
        print(
            f"{row['model']:10s} {'x' + str(row['scale']):>5s}  {_label(row['backend'], row['precision']):18s} {cells}"
            f"  {row['peak_above_loaded_mb']:7.0f}  {psnr if psnr is not None else float('nan'):7.2f}  {change if change is not None else float('nan'):+6.3f}"
        )
    for scale in SCALES:
        speeds = results["bicubic"][str(scale)].get("speed_mpx_s", {})
        print(f"bicubic x{scale}: " + ", ".join(f"{name} " + "/".join(f"{v:.1f}" for v in by_threads.values()) + " Mpx/s" for name, by_threads in speeds.items()))

    results["fastest_within_loss"] = {}
    for name in models:
        for scale in SCALES:
            candidates = [
                r for r in results["models"]
                if r["model"] == name and r["scale"] == scale and "error" not in r
                and (r["psnr_change_db"] is None or r["psnr_change_db"] >= -MAX_PSNR_LOSS)
            ]
            if candidates:
                best = max(candidates, key=lambda r: max(r["speed_mpx_s"].values()))
                threads = max(best["speed_mpx_s"], key=best["speed_mpx_s"].get)
                results["fastest_within_loss"][f"{name} x{scale}"] = {"backend": best["backend"], "precision": best["precision"], "threads": int(threads)}
                print(f"fastest within {MAX_PSNR_LOSS} dB, {name} x{scale}: {_label(best['backend'], best['precision'])}, {threads} thread(s)")

    flagship = DEFAULT_MODEL if DEFAULT_MODEL in models else models[0]
    tiled = {"kind": "tiled", "model": flagship, "scale": 4, "shipped": shipped, "height": tiled_size[0], "width": tiled_size[1],
             "tile": tiled_tile, "threads": [max(THREADS)]}
    results["tiled_x4"] = {"model": flagship, **run_worker(tiled)}
    t = results["tiled_x4"]
    if "error" in t:
        print(f"tiled x4 of {tiled_size[1]}x{tiled_size[0]}: failed: {t['error']}")
    else:
        print(
            f"tiled x4 {flagship} {t['input'][0]}x{t['input'][1]} -> {t['output'][0]}x{t['output'][1]}: tile {t['tile']}, "
            f"{t['seconds']:.1f} s, peak RSS {t['peak_rss_mb']:.0f} MB ({t['peak_above_loaded_mb']:.0f} MB above the loaded model; "
            f"the uint8 output alone is {t['output_uint8_mb']:.0f} MB)"
        )

    results["pipeline"] = pipeline(small, shipped, count=count, repeat=1 if args.quick else 2, threads=max(THREADS))
    (out / "inference_speed.json").write_text(json.dumps(results, indent=2))
    written = plot(results, out)
    print(f"\nwrote {out / 'inference_speed.json'}" + "".join(f", {p.name}" for p in written))


if __name__ == "__main__":
    main()
