"""Does OpenVINO beat PyTorch and ONNX Runtime on this CPU? The network alone, same run, same input.

Run: python benchmarks/openvino_speed.py [--size 256] [--threads 2] [--repeat 5] [--out FILE.json]

For SwiftRep, ESPCN and FSRCNN (shipped weights) at x2 and x4, on a (1, C, size, size) input
(C = 3 for SwiftRep, 1 for the luma models; a natural image, the bundled demo photo), it times
the network's forward pass (best of ``--repeat`` after a warm-up, output megapixels per second)
in: PyTorch fp32 (the baseline of every ratio), PyTorch bf16 (autocast, channels-last, as
superres runs it; only where the CPU reports AVX-512 BF16 or AMX), ONNX Runtime fp32 (the
graph ``superres export --format onnx`` writes), OpenVINO with f32 inference precision and
OpenVINO with its default precision hint (bf16 on CPUs that have it). OpenVINO and ONNX Runtime
get the graph reshaped to the timed size (OpenVINO's fastest case; a dynamic graph would have
to be recompiled per tile size). Every backend gets the same thread count.

Then the Set5 PSNR (paper protocol, Y channel) of each OpenVINO precision against PyTorch
fp32, so that a faster backend that changes the numbers by more than 0.05 dB shows.

It prints one line per model, scale and backend with its ratio to PyTorch fp32, and
``torch.backends.cpu.get_cpu_capability()`` beside them; ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
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


def _best_of(run, repeat: int) -> float:
    run()  # warm-up: kernels chosen, memory allocated
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


class _OpenVinoModel(torch.nn.Module):
    """An OpenVINO compiled graph behind the model interface, for the Set5 protocol (dynamic sizes)."""

    def __init__(self, compiled, scale: int, contract):
        super().__init__()
        self.compiled, self.scale, self.contract = compiled, scale, contract

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.compiled(x.numpy())[0], dtype=np.float32))


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
            timings = {}

            with torch.inference_mode():
                timings["torch fp32"] = _best_of(lambda: model(x), args.repeat)
                if bf16:
                    last = model.to(memory_format=torch.channels_last)
                    xl = x.contiguous(memory_format=torch.channels_last)

                    def run_bf16():
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            return last(xl)

                    timings["torch bf16"] = _best_of(run_bf16, args.repeat)
                    model = model.to(memory_format=torch.contiguous_format)

            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x.numpy()}
            timings["onnxruntime fp32"] = _best_of(lambda: session.run(None, feed), args.repeat)

            compiled_dynamic = {}
            for hint in ("f32", "default"):
                config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}
                if hint == "f32":
                    config["INFERENCE_PRECISION_HINT"] = "f32"
                static = core.read_model(str(graph))
                static.reshape([1, contract.channels, x.shape[2], x.shape[3]])
                compiled = core.compile_model(static, "CPU", config)
                request = compiled.create_infer_request()
                data = x.numpy()
                timings[f"openvino {hint}"] = _best_of(lambda: request.infer({0: data}), args.repeat)
                compiled_dynamic[hint] = core.compile_model(core.read_model(str(graph)), "CPU", config)

            psnr = {}
            if SET5.is_dir():
                items = load_benchmark(SET5, scale)
                psnr["torch fp32"] = score_images(model, items, scale=scale, dataset="Set5").psnr
                for hint, compiled in compiled_dynamic.items():
                    psnr[f"openvino {hint}"] = score_images(_OpenVinoModel(compiled, scale, contract), items, scale=scale, dataset="Set5").psnr
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
