"""Training throughput (HR patches per second) by model and data cache, on this machine.

Run: python benchmarks/training_throughput.py [--threads 2] [--steps 20] [--data DIR]

For each cache (memory: decoded images in RAM; subimages: 480 px crops saved once as .npy
and memory-mapped; none: decode the PNG for every patch) it first times the data pipeline
alone (batches of 16 x 96 px HR patches with their bicubic LR, as training draws them),
then full training steps (forward, backward, Adam) of FSRCNN, EDSR-baseline and SwiftRep
at x2. The no-cache pipeline is the baseline of the ratios printed.

With ``--degradations`` it instead times LR synthesis at the real-world recipe's geometry
(configs/swiftrep_real_x4.yaml: 16 x 192 px HR patches at x4, from the memory cache): the
paper protocol's bicubic (the baseline), the first-order degradations and Real-ESRGAN's
second-order model, against one SwiftRep training step (bf16 autocast where the CPU has
fast bf16), so it shows whether the data pipeline is on the critical path.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from superres.data.datasets import HRPatchDataset, ImageStore, PatchStreamSampler
from superres.data.degradations import Degradations, SecondOrder, make_lr_batch
from superres.models import create

REPO = Path(__file__).resolve().parent.parent


def batches(store: ImageStore, batch: int, patch: int):
    dataset = HRPatchDataset(store, patch=patch, seed=0)
    loader = DataLoader(dataset, batch_size=batch, sampler=PatchStreamSampler(batch_size=batch), num_workers=0)
    for hr in loader:
        yield make_lr_batch(hr, 2)


def time_pipeline(store, n: int, batch: int, patch: int) -> float:
    it = batches(store, batch, patch)
    next(it)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return n * batch / (time.perf_counter() - t0)


def time_training(name: str, store, n: int, batch: int, patch: int) -> float:
    model = create(name, scale=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    it = batches(store, batch, patch)

    def step():
        lr, hr = next(it)
        loss = (model(lr) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, kernel selection)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return n * batch / (time.perf_counter() - t0)


def time_degradations(store: ImageStore, n: int, batch: int, patch: int, scale: int) -> dict:
    dataset = HRPatchDataset(store, patch=patch, seed=0)
    loader = iter(DataLoader(dataset, batch_size=batch, sampler=PatchStreamSampler(batch_size=batch), num_workers=0))
    hrs = [next(loader) for _ in range(n)]
    kinds = {
        "bicubic": Degradations(),
        "first-order": Degradations(blur_sigma=(0.2, 3.0), noise_sigma=(1.0, 30.0), jpeg_quality=(30, 95)),
        "second-order": Degradations(second_order=SecondOrder()),
    }
    results = {}
    for name, degradations in kinds.items():
        make_lr_batch(hrs[0], scale, degradations, torch.Generator().manual_seed(0))  # warm-up
        t0 = time.perf_counter()
        for i, hr in enumerate(hrs):
            make_lr_batch(hr, scale, degradations, torch.Generator().manual_seed(i))
        results[name] = (time.perf_counter() - t0) / n
    model = create("swiftrep", scale=scale, blocks=24)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    fast_bf16 = torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "AVX2")
    lr, hr = make_lr_batch(hrs[0], scale)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast_bf16):
            loss = (model(lr).float() - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(max(2, n // 2)):
        step()
    results["swiftrep-step"] = (time.perf_counter() - t0) / max(2, n // 2)
    results["swiftrep-step-precision"] = "bf16-mixed" if fast_bf16 else "32-true"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/train/hr"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--models", nargs="+", default=["fsrcnn", "edsr-baseline", "swiftrep"])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--degradations", action="store_true", help="time LR synthesis (real-world recipe) instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"CPU capability: {capability}, {args.threads} threads", flush=True)
    if args.degradations:
        store = ImageStore([args.data], cache="memory", min_size=192)
        r = time_degradations(store, args.steps, 16, 192, 4)
        base = r["bicubic"]
        print(f"LR synthesis per batch of 16 x 192 px at x4 (one SwiftRep-24 x4 step, {r['swiftrep-step-precision']}: {r['swiftrep-step'] * 1000:.0f} ms)")
        for name in ("bicubic", "first-order", "second-order"):
            print(f"  {name:13s} {r[name] * 1000:7.1f} ms  {r[name] / base:5.1f}x bicubic  {r[name] / r['swiftrep-step']:6.1%} of a step")
        if args.json:
            Path(args.json).write_text(json.dumps({"cpu_capability": capability, "threads": args.threads, **r}, indent=2))
        return
    results = {"threads": args.threads, "batch": args.batch, "patch": args.patch, "pipeline": {}, "training": {}}
    with tempfile.TemporaryDirectory() as cache_dir:
        for cache in ("none", "subimages", "memory"):
            t0 = time.perf_counter()
            store = ImageStore([args.data], cache=cache, cache_dir=cache_dir, min_size=args.patch)
            setup = time.perf_counter() - t0
            n = max(3, args.steps // 4) if cache == "none" else args.steps * 5
            rate = time_pipeline(store, n, args.batch, args.patch)
            results["pipeline"][cache] = {"patches_per_s": rate, "setup_s": setup}
            print(f"pipeline  cache={cache:9s} {rate:9.1f} patches/s   (setup {setup:5.1f} s)", flush=True)
            for name in args.models:
                steps = max(2, args.steps // 4) if cache == "none" or name == "edsr-baseline" else args.steps
                rate = time_training(name, store, steps, args.batch, args.patch)
                results["training"].setdefault(name, {})[cache] = rate
                print(f"training  cache={cache:9s} {name:14s} {rate:7.1f} patches/s", flush=True)
    base = results["pipeline"]["none"]["patches_per_s"]
    print("\npipeline speed-up over decoding every patch:")
    for cache in ("subimages", "memory"):
        print(f"  {cache:9s} {results['pipeline'][cache]['patches_per_s'] / base:8.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
