"""The Ray engine's overhead: one folder of small images through ``superres upscale`` in one
process and through ``--engine ray`` on this machine, in one run, with the ratio.

Run: python benchmarks/batch_throughput.py [--images 200] [--size 128] [--model swiftrep]
     [--out docs/benchmarks] [--quick]

Three end-to-end runs of the CLI, each in its own process, on the same folder (crops of the
training photos in ../shared/datasets/train/hr; flat synthetic pictures if that is absent):

1. ``local``: ``superres upscale IN -o OUT`` (PyTorch's default threads, one per core).
2. ``ray, new cluster``: ``--engine ray`` with no address: the run starts a local Ray
   instance, one replica with all of the machine's CPUs as its threads, and stops it.
3. ``ray, running cluster``: ``--engine ray --ray-address`` to a 1-node cluster started
   beforehand (``ray start --head``, not timed), as a cluster is used.

For each: wall time (process start to exit, model loading included), images per second,
and the steady rate between the first and the last file written (what a long job runs at),
each as a ratio to ``local``. The outputs of the three runs are compared byte for byte.
Writes ``batch_throughput.json`` into ``--out``. ``--quick`` (10 images of 32 px, results
in a temporary folder unless --out is given) only checks that it runs. Timings need an
otherwise idle machine (``/work/tools/quiet`` on the shared one).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "datasets" / "train" / "hr"


def make_images(folder: Path, count: int, size: int) -> str:
    """``count`` PNG crops of ``size`` px into ``folder``; returns where they came from."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    sources = sorted(p for p in PHOTOS.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")) if PHOTOS.is_dir() else []
    for i in range(count):
        if sources:
            with Image.open(sources[i % len(sources)]) as photo:
                photo = photo.convert("RGB")
                step = i // len(sources)
                x = (step * size * 3) % max(1, photo.width - size)
                y = (step * size * 2) % max(1, photo.height - size)
                crop = photo.crop((x, y, x + size, y + size))
        else:
            yy, xx = np.mgrid[0:size, 0:size]
            crop = Image.fromarray(np.stack([(xx * 3 + i) % 256, (yy * 5) % 256, (xx + yy + i) % 256], 2).astype(np.uint8))
        crop.save(folder / f"img{i:04d}.png")
    return f"crops of {len(sources)} photos in {PHOTOS}" if sources else "synthetic gradients (no training photos found)"


def timed_run(arguments: list[str], env: dict) -> dict:
    """Run the CLI; the wall time and the time each 'wrote' line appeared."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "superres.cli", "upscale", *arguments], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )
    written = []
    for line in process.stdout:
        if line.startswith("wrote "):
            written.append(time.perf_counter() - start)
    stderr = process.stderr.read()
    process.wait()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"run failed ({process.returncode}): {' '.join(arguments)}\n{stderr[-3000:]}")
    steady = (len(written) - 1) / (written[-1] - written[0]) if len(written) > 2 and written[-1] > written[0] else None
    return {"wall_s": round(wall, 2), "images": len(written), "first_written_s": round(written[0], 2) if written else None,
            "images_per_s": round(len(written) / wall, 3), "steady_images_per_s": None if steady is None else round(steady, 3)}


def start_head(env: dict, temp_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = temp_dir / "head.log"
    ray = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray) if ray.exists() else "ray", "start", "--head", "--block", f"--port={port}", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp_dir / 'session'}"],
        env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )
    while "--block" not in log.read_text():
        if head.poll() is not None:
            sys.exit(f"ray start failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return head, f"127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=128, help="side of the square inputs in pixels (default: 128)")
    parser.add_argument("--model", default="swiftrep")
    parser.add_argument("--precision", default="fp32", help="fp32 (default) or bf16, the same for every run")
    parser.add_argument("--out", help="folder for batch_throughput.json (default: docs/benchmarks; --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.size = 10, 32

    import ray
    import torch

    work = Path(tempfile.mkdtemp(prefix="superres-batch-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # The running cluster is authenticated with a token of this run's (Ray 2.59+ asks for one).
    cluster_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    try:
        source = make_images(work / "in", args.images, args.size)
        # One precision for all three: "auto" is a timed probe per process (bf16 or fp32).
        common = ["-m", args.model, "--precision", args.precision]
        runs = {}
        print(f"{args.images} images of {args.size}x{args.size} ({source}), {args.model} x4 {args.precision}, "
              f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        runs["local"] = timed_run([str(work / "in"), "-o", str(work / "local"), *common], env)
        runs["ray, new cluster"] = timed_run([str(work / "in"), "-o", str(work / "ray_new"), "--engine", "ray", *common], env)
        head, address = start_head(cluster_env, work)
        try:
            runs["ray, running cluster"] = timed_run(
                [str(work / "in"), "-o", str(work / "ray_running"), "--engine", "ray", "--ray-address", address, *common], cluster_env
            )
        finally:
            head.terminate()
            head.wait(120)
        names = sorted(p.name for p in (work / "local").iterdir())
        identical = all(
            (work / folder / name).read_bytes() == (work / "local" / name).read_bytes()
            for folder in ("ray_new", "ray_running") for name in names
        ) and len(names) == args.images
        base = runs["local"]
        print(f"\n{'path':<22} {'wall s':>7} {'images/s':>9} {'ratio':>6} {'steady/s':>9} {'ratio':>6} {'1st file s':>10}")
        for name, run in runs.items():
            ratio = run["images_per_s"] / base["images_per_s"]
            steady = run["steady_images_per_s"]
            steady_ratio = steady / base["steady_images_per_s"] if steady and base["steady_images_per_s"] else float("nan")
            run["ratio"], run["steady_ratio"] = round(ratio, 3), round(steady_ratio, 3)
            print(f"{name:<22} {run['wall_s']:>7.1f} {run['images_per_s']:>9.2f} {ratio:>6.2f} {steady or 0:>9.2f} {steady_ratio:>6.2f} {run['first_written_s']:>10.1f}")
        print(f"outputs byte-identical across the three runs: {identical}")
        result = {
            "command": " ".join(["python", "benchmarks/batch_throughput.py", *sys.argv[1:]]),
            "images": args.images, "size": args.size, "model": args.model, "precision": args.precision, "source": source,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "torch": torch.__version__, "ray": ray.__version__, "identical_outputs": identical, "runs": runs,
        }
        out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="superres-batch-results-")) if args.quick else REPO / "docs" / "benchmarks")
        out.mkdir(parents=True, exist_ok=True)
        (out / "batch_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out / 'batch_throughput.json'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
