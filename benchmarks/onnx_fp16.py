"""What ``superres export --format onnx --fp16`` costs: Set5 PSNR of the fp16 graph against the fp32 one.

Run: python benchmarks/onnx_fp16.py (needs the onnx extra and ../shared's Set5)

For every shipped model and scale: export the fp32 and the fp16 graph
(superres.inference.onnx.export_onnx), load each back as a model (ONNX Runtime on the CPU,
superres.models.onnx_graph) and score it on Set5 by the paper protocol (Y channel, scale px
shaved; superres.evaluate.score_images); prints both and the change. docs/ONNX.md quotes it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SET5 = REPO.parent / "shared" / "datasets" / "benchmark" / "Set5"


def main() -> None:
    from superres.data.datasets import load_benchmark
    from superres.evaluate import score_images
    from superres.inference.onnx import export_onnx
    from superres.models import list_specs, load, load_for_scale

    folder = Path(tempfile.mkdtemp(prefix="superres-fp16-"))
    for spec in list_specs(generators_only=True):
        for scale in spec.shipped_scales():
            items = load_benchmark(SET5, scale)
            model = load_for_scale(spec.name, scale)
            scores = {}
            for fp16 in (False, True):
                path = folder / f"{spec.name}_x{scale}{'_fp16' if fp16 else ''}.onnx"
                export_onnx(model, path, scale=scale, name=spec.name, fp16=fp16)
                scores[fp16] = score_images(load(path), items, scale=scale, dataset="Set5").psnr
            print(f"{spec.name} x{scale}: fp32 {scores[False]:.4f} dB, fp16 {scores[True]:.4f} dB ({scores[True] - scores[False]:+.4f})", flush=True)


if __name__ == "__main__":
    main()
