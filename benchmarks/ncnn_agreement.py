"""How close superres's ncnn files, run by the ncnn runtime, are to superres's PyTorch upscaler.

Run: python benchmarks/ncnn_agreement.py [--crop N] (needs the ncnn extra and ../shared's Set5)

For every shipped model and scale: export the .param/.bin pair (superres.inference.export_ncnn),
run each Set5 image (whole, or its top-left N x N crop) through the ncnn runtime
(superres.models.ncnn.NcnnRuntime, CPU, one thread) and through superres's upscaler (PyTorch
fp32, whole image), round both to 8 bits and print the PSNR between them per image. Then, for
the luma models (ESPCN, FSRCNN), the same for the RGB wrapper run in fp32 PyTorch
(superres.inference.export_ncnn.LumaAsRgb), which isolates what ncnn's edge padding changes
from what the fp16 weights do. docs/APPS.md holds the numbers.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SET5 = REPO.parent / "shared" / "datasets" / "benchmark" / "Set5"


def _psnr_8bit(a: np.ndarray, b: np.ndarray) -> float:
    a, b = (np.round(np.clip(x, 0, 1) * 255).astype(np.float64) for x in (a, b))
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=0, help="top-left crop side in pixels (default: 0, whole images)")
    args = parser.parse_args()

    from superres.inference.export_ncnn import LumaAsRgb, export_ncnn
    from superres.inference.upscaler import Upscaler
    from superres.models import list_specs, load_for_scale
    from superres.models.ncnn import NcnnRuntime

    torch.set_num_threads(2)
    images = []
    for path in sorted(SET5.glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        if args.crop:
            pixels = pixels[: args.crop, : args.crop]
        images.append(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    folder = Path(tempfile.mkdtemp(prefix="superres-ncnn-"))
    luma = []
    for spec in list_specs(generators_only=True):
        for scale in spec.shipped_scales():
            model = load_for_scale(spec.name, scale)
            param, _ = export_ncnn(model, folder, name=spec.name, scale=scale)
            runtime = NcnnRuntime(param, threads=1)  # two OpenMP threads ran 10x slower on a busy 2-core machine
            upscaler = Upscaler(model, scale=scale, name=spec.name, tile=0, precision="fp32")
            expected = [upscaler.upscale_planes(image)[0] for image in images]
            values = [_psnr_8bit(runtime(image), ref) for image, ref in zip(images, expected)]
            print(f"{spec.name} x{scale} ncnn vs PyTorch: " + " ".join(f"{v:.1f}" for v in values) + f" dB (min {min(values):.2f})", flush=True)
            if upscaler.channels == 1:
                luma.append((spec.name, scale, model, expected))
    for name, scale, model, expected in luma:
        wrapper = LumaAsRgb(model.eval(), scale=scale).eval()
        with torch.inference_mode():
            values = [_psnr_8bit(wrapper(torch.from_numpy(image)[None])[0].numpy(), ref) for image, ref in zip(images, expected)]
        print(f"{name} x{scale} fp32 wrapper vs PyTorch (the border alone): " + " ".join(f"{v:.1f}" for v in values) + f" dB (min {min(values):.2f})", flush=True)


if __name__ == "__main__":
    main()
