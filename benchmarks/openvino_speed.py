"""Does OpenVINO beat PyTorch and ONNX Runtime on this CPU? The network alone, same run, same input.

Run: python benchmarks/openvino_speed.py [--size 256] [--threads 2] [--repeat 5] [--out FILE.json]

For SwiftRep, ESPCN and FSRCNN (shipped weights) at x2 and x4, on a (1, C, size, size) input
(C = 3 for SwiftRep, 1 for the luma models; a natural image, the bundled demo photo), it times
the network's forward pass (best of ``--repeat`` after a warm-up, the backends taking turns;
output megapixels per second)
in: PyTorch fp32 (the baseline of every ratio), PyTorch bf16 (autocast, channels-last, as
superres runs it; only where the CPU reports AVX-512 BF16 or AMX), ONNX Runtime fp32 (the
graph ``superres export --format onnx`` writes), and OpenVINO on that graph as ``--backend
openvino`` runs it (:class:`superres.inference.runners.OpenVinoRunner`: dynamic height and
width, compiled once) in fp32 and, where the CPU has bf16 instructions, bf16 (OpenVINO's own
default on such CPUs). Every backend gets the same thread count.

Then the Set5 PSNR (paper protocol, Y channel) of each OpenVINO precision against PyTorch
fp32 (PyTorch bf16's own change is recorded in each weight file's metadata), so that a faster backend that changes the numbers by more than 0.05 dB shows.

It prints one line per model, scale and backend with its ratio to PyTorch fp32, and
``torch.backends.cpu.get_cpu_capability()`` beside them; ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SET5 = REPO.parent / "shared" / "datasets" / "benchmark" / "Set5"
MODELS = ["swiftrep", "espcn", "fsrcnn"]
SCALES = [2, 4]
MAX_PSNR_LOSS = 0.05


class _OpenVinoModel(torch.nn.Module):
    """superres's OpenVINO runner behind the model interface, for the Set5 protocol."""

    def __init__(self, runner, scale: int, contract):
        super().__init__()
        self.runner, self.scale, self.contract = runner, scale, contract

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner.forward(x.float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="input side in pixels (default: 256)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every backend (default: 2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs, best kept (default: 5)")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    import onnxruntime as ort
    import openvino as ov

    from superres.data.datasets import load_benchmark
    from superres.device import bf16_is_fast
    from superres.evaluate import score_images
    from superres.imaging import read_image
    from superres.inference.onnx import export_onnx, prepare_for_inference
    from superres.inference.runners import OpenVinoRunner
    from superres.models import load_for_scale, model_contract

    torch.set_num_threads(args.threads)
    capability = torch.backends.cpu.get_cpu_capability()
    bf16 = bf16_is_fast("cpu")
    core = ov.Core()
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__} capability {capability}, "
          f"bf16 fast: {bf16}, onnxruntime {ort.__version__}, openvino {ov.__version__}, {args.threads} threads, "
          f"{args.size}x{args.size} input, best of {args.repeat}")
    demo = read_image(REPO / "src" / "superres" / "assets" / "demo.png").pixels
    results = {"capability": capability, "threads": args.threads, "size": args.size, "openvino": ov.__version__,
               "onnxruntime": ort.__version__, "torch": torch.__version__, "rows": []}
    folder = Path(tempfile.mkdtemp(prefix="superres-openvino-"))
    for name in args.models:
        for scale in SCALES:
            model = prepare_for_inference(load_for_scale(name, scale))
            contract = model_contract(model)
            rgb = np.asarray(demo[: args.size, : args.size, :3], dtype=np.float32) / 255.0
            if contract.channels == 1:
                from superres.models.contract import rgb_to_luma_input

                x = rgb_to_luma_input(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]).contiguous()
            else:
                x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
            mp = x.shape[2] * x.shape[3] * scale * scale / 1e6
            graph = folder / f"{name}_x{scale}.onnx"
            graph.write_bytes(export_onnx(model, scale=scale, name=name))
            runs = {}  # backend -> a callable running the network once

            def run_fp32(model=model, x=x):
                with torch.inference_mode():
                    return model(x)

            runs["torch fp32"] = run_fp32
            if bf16:
                last = copy.deepcopy(model).to(memory_format=torch.channels_last)
                xl = x.contiguous(memory_format=torch.channels_last)

                def run_bf16(last=last, xl=xl):
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                        return last(xl)

                runs["torch bf16"] = run_bf16

            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x.numpy()}
            runs["onnxruntime fp32"] = lambda session=session, feed=feed: session.run(None, feed)

            # What --backend openvino runs: the dynamic graph, compiled once (superres's runner).
            openvino = {}
            for precision in ("fp32", "bf16") if bf16 else ("fp32",):
                openvino[precision] = OpenVinoRunner(graph, threads=args.threads, precision=precision)
                runs[f"openvino {precision}"] = lambda runner=openvino[precision], data=x.numpy(): runner(data)

            # Round-robin, best of --repeat: on a shared machine a busy moment then slows one
            # run of every backend, not all runs of one.
            for run in runs.values():
                run()  # warm-up: kernels chosen, memory allocated
            timings = {backend: float("inf") for backend in runs}
            for _ in range(args.repeat):
                for backend, run in runs.items():
                    start = time.perf_counter()
                    run()
                    timings[backend] = min(timings[backend], time.perf_counter() - start)

            psnr = {}
            if SET5.is_dir():
                items = load_benchmark(SET5, scale)
                psnr["torch fp32"] = score_images(model, items, scale=scale, dataset="Set5").psnr
                for precision, runner in openvino.items():
                    psnr[f"openvino {precision}"] = score_images(_OpenVinoModel(runner, scale, contract), items, scale=scale, dataset="Set5").psnr
            base = timings["torch fp32"]
            for backend, seconds in timings.items():
                change = psnr.get(backend, None)
                delta = None if change is None or "torch fp32" not in psnr else change - psnr["torch fp32"]
                row = {"model": name, "scale": scale, "backend": backend, "mp_per_s": mp / seconds, "ratio": base / seconds,
                       "set5_psnr": change, "set5_change": delta}
                results["rows"].append(row)
                note = "" if delta is None else f"  Set5 {change:.3f} dB ({delta:+.3f})"
                print(f"{name:9s} x{scale} {backend:17s} {mp / seconds:7.2f} MP/s  x{base / seconds:5.2f} vs torch fp32{note}", flush=True)
    winners = [r for r in results["rows"] if r["backend"].startswith("openvino") and r["ratio"] > 1.0
               and (r["set5_change"] is None or abs(r["set5_change"]) <= MAX_PSNR_LOSS)]
    best_other = {}
    for r in results["rows"]:
        if not r["backend"].startswith("openvino"):
            key = (r["model"], r["scale"])
            best_other[key] = max(best_other.get(key, 0.0), r["mp_per_s"])
    beats_all = [r for r in winners if r["mp_per_s"] > best_other[(r["model"], r["scale"])]]
    print("OpenVINO faster than every other backend within 0.05 dB: "
          + (", ".join(f"{r['model']} x{r['scale']} ({r['backend']})" for r in beats_all) or "nowhere"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
