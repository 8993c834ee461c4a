"""``superres benchmark``: the quality table of every shipped model, regenerated from scratch.

Each shipped weight file is scored under the paper protocol on the benchmark folders (Set5
and Set14 by default), beside bicubic and the published numbers of the same architecture
(../shared/REFERENCE.md); its parameters, multiply-adds and measured CPU speed are added,
and the table is written to ``docs/MODEL_ZOO.md`` with a picture comparing crops of
bicubic, FSRCNN, the flagship and the ground truth. The measured Set5/Set14 numbers are
also written into each weight file's metadata (``quality``), where the web app reads them.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from superres.atomic import atomic_path, write_atomic
from superres.data.datasets import BenchmarkImage, list_images, load_benchmark
from superres.device import cpu_capability, cpu_threads
from superres.evaluate import predict_uint8, score_images
from superres.imaging.io import read_image
from superres.imaging.pixels import from_float, to_float, to_float_tensor
from superres.imaging.resize import imresize
from superres.inference.channels import adapt_channels
from superres.inference.onnx import INT8_MAX_LOSS, export_onnx, quantize_int8
from superres.inference.runners import OnnxRunner, TorchRunner
from superres.metrics import psnr
from superres.models import create, get_spec, list_specs, load, pretrained_path, read_metadata
from superres.models.checkpoint import training_stages
from superres.models.checkpoint import update_metadata as record_metadata  # measure_zoo's flag has the name
from superres.models.contract import input_channels, rgb_to_luma_input
from superres.models.registry import quantized_path
from superres.models.summary import model_summary
from superres.options import PNG_SUFFIX

__all__ = ["ZooRow", "calibration_inputs", "measure_precisions", "measure_zoo", "write_report"]

# What the flagship is measured against (issue: at least VDSR, with a fifth of its cost).
FLAGSHIP_TARGET = "vdsr"


@dataclass
class ZooRow:
    name: str
    scale: int
    scores: dict[str, tuple[float, float]]  # dataset -> (PSNR, SSIM)
    bicubic: dict[str, tuple[float, float]]
    parameters: int
    macs_per_output_pixel: float
    output_mp_per_s: float
    stages: list[tuple[str, int | None]]  # (run name, iterations), first stage first


def shipped_models() -> list[tuple[str, int, Path]]:
    """(name, scale, path) of every weight file shipped in the package, in registry order."""
    return [(spec.name, s, pretrained_path(spec.name, s)) for spec in list_specs(generators_only=True) for s in spec.shipped_scales()]


def _speed(model: torch.nn.Module, scale: int, threads: int, lr_side: int = 256, repeat: int = 3) -> float:
    """Output megapixels per second on a ``lr_side`` square RGB image, untiled, run as
    ``superres upscale`` runs a tile (fp32); for a luma model the YCbCr split and the bicubic
    chroma are timed too."""
    run = adapt_channels(TorchRunner(model, torch.device("cpu")), input_channels(model))
    with cpu_threads(threads):
        x = np.random.default_rng(0).random((1, 3, lr_side, lr_side), dtype=np.float32)
        run(x)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            run(x)
            best = min(best, time.perf_counter() - t0)
    return (lr_side * scale) ** 2 / 1e6 / best


@lru_cache(maxsize=None)
def _benchmark(folder: str, scale: int) -> tuple[BenchmarkImage, ...]:
    """A benchmark folder prepared at ``scale``, read once per process (scores and figures share it)."""
    return tuple(load_benchmark(folder, scale))


@lru_cache(maxsize=None)
def _bicubic_score(folder: str, scale: int) -> tuple[float, float]:
    s = score_images(create("bicubic", scale=scale), _benchmark(folder, scale), scale=scale, dataset=Path(folder).name)
    return s.psnr, s.ssim


def measure_zoo(
    folders: Sequence[str | os.PathLike],
    *,
    models: Sequence[tuple[str, int, Path]] | None = None,
    threads: int = 2,
    update_metadata: bool = True,
) -> list[ZooRow]:
    """Score every shipped (or given) model; optionally record the scores in its weight file."""
    rows = []
    for name, scale, path in models or shipped_models():
        model = load(path).eval()
        scores, base = {}, {}
        for folder in folders:
            dataset = Path(folder).name
            s = score_images(model, _benchmark(str(folder), scale), scale=scale, dataset=dataset)
            scores[dataset], base[dataset] = (s.psnr, s.ssim), _bicubic_score(str(folder), scale)
        meta = read_metadata(path)
        summary = model_summary(name, scale, **meta.get("hyperparameters", {}))  # as trained, e.g. a deeper SwiftRep
        training = meta.get("training") or {}
        rows.append(ZooRow(name, scale, scores, base, summary.parameters, summary.macs_per_output_pixel, _speed(model, scale, threads), training_stages(training)))
        if update_metadata:
            quality = {d: {"psnr": round(p, 4), "ssim": round(q, 5)} for d, (p, q) in scores.items()}
            if meta.get("quality") != quality:
                record_metadata(path, {"quality": quality})
    return rows


def _recipe(stages: list[tuple[str, int | None]]) -> str:
    return " → ".join(f"{run} ({iterations if iterations is not None else '?'})" for run, iterations in stages) or "–"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _crop_figure(folders: Sequence[str | os.PathLike], out: Path, scale: int, crop: int = 96) -> Path | None:
    """A grid: one row per benchmark image (a centre crop), columns bicubic | FSRCNN | flagship | HR."""
    columns = [("bicubic", "bicubic"), ("FSRCNN", "fsrcnn"), ("SwiftRep", "swiftrep")]
    models = {}
    for label, name in columns:
        if name == "bicubic":
            models[label] = create("bicubic", scale=scale)
        elif pretrained_path(name, scale).is_file():
            models[label] = load(pretrained_path(name, scale)).eval()
    if len(models) < 2:
        return None
    zoom = 2
    tile = crop * zoom
    items = [item for folder in folders for item in _benchmark(str(folder), scale)]
    labels = list(models) + ["HR (ground truth)"]
    sheet = Image.new("RGB", (tile * len(labels), (tile + 4) * len(items) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * tile + 4, 4), label + (f" x{scale}" if c < len(models) else ""), fill="black")
    for r, item in enumerate(items):
        h, w = item.hr.shape[:2]
        y, x = (h - crop) // 2 // scale * scale, (w - crop) // 2 // scale * scale
        outputs = [predict_uint8(m, item.lr) for m in models.values()] + [item.hr]
        for c, image in enumerate(outputs):
            patch = image[y : y + crop, x : x + crop]
            patch = np.repeat(patch, 3, axis=2) if patch.shape[2] == 1 else patch
            sheet.paste(Image.fromarray(patch).resize((tile, tile), Image.NEAREST), (c * tile, 20 + r * (tile + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=PNG_SUFFIX) as temp:
        sheet.save(temp)
    return out


def write_report(rows: list[ZooRow], folders: Sequence[str | os.PathLike], out: str | os.PathLike, *, command: str, threads: int) -> Path:
    """Write the Markdown table (and the crop picture beside it)."""
    out = Path(out)
    datasets = [Path(f).name for f in folders]
    lines = [
        "# Model zoo: shipped weights and their measured quality",
        "",
        f"Regenerated by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, CPU capability {cpu_capability()}; speed with {threads} thread(s), PyTorch fp32, one 256x256 LR image).",
        "",
        "PSNR (dB) / SSIM on Y under the paper protocol (MATLAB bicubic LR, border of `scale` px shaved,",
        "output rounded to 8 bits). Set14 uses our copy, whose `bridge.png` is grayscale and scored as it is;",
        "papers of the EDSR era and later used a three-channel copy that scores the Set14 mean ~0.09 dB",
        "higher (../shared/REFERENCE.md). *Published* is the architecture's own paper (Set5 / Set14 PSNR),",
        "trained on GPUs for days; ours were trained on this project's 114 photos on a 2-core CPU.",
        "*Recipe*: the runs behind the weights, each from `configs/<run>.yaml`, a later stage starting",
        "from the end of the one before it (`model.init_from`).",
        "",
        "*For*: what the weights learnt to undo: clean bicubic downscales (the protocol below), or real",
        "photos (JPEG, noise, blur: Real-ESRGAN's degradations), which they are scored on in",
        "[REALWORLD.md](REALWORLD.md); on clean inputs those score about as bicubic does, by design.",
        "",
        "| model | for | scale | " + " | ".join(f"{d} (ours)" for d in datasets) + " | "
        + " | ".join(f"{d} bicubic" for d in datasets) + " | published Set5 / Set14 | params | MACs / output px | CPU MP/s | recipe (iterations) |",
        "|---|---|---|" + "---|" * (2 * len(datasets)) + "---|---|---|---|---|",
    ]
    for row in rows:
        ours = " | ".join(f"{row.scores[d][0]:.2f} / {row.scores[d][1]:.4f}" for d in datasets)
        base = " | ".join(f"{row.bicubic[d][0]:.2f} / {row.bicubic[d][1]:.4f}" for d in datasets)
        published = get_spec(row.name).published.get(row.scale)
        pub = f"{_fmt(published[0])} / {_fmt(published[1])}" if published else "–"
        lines.append(
            f"| {row.name} | {'real photos' if get_spec(row.name).trained_for == 'real' else 'clean'} | x{row.scale} | {ours} | {base} | {pub} | {row.parameters / 1e3:.1f}K | "
            f"{row.macs_per_output_pixel / 1e3:.1f}K | {row.output_mp_per_s:.1f} | {_recipe(row.stages)} |"
        )
    target = get_spec(FLAGSHIP_TARGET).published
    vdsr_macs = model_summary(FLAGSHIP_TARGET, 2).macs_per_output_pixel
    lines += [
        "",
        f"Flagship target: at least VDSR (Set5 {target[2][0]} / {target[3][0]} / {target[4][0]} at x2 / x3 / x4; Set14 "
        f"{target[2][1]} / {target[3][1]} / {target[4][1]}) with under a fifth of its {vdsr_macs / 1e3:.0f}K multiply-adds per output pixel.",
    ]
    figures = []
    for scale in (4, 2):
        figure = _crop_figure(folders, out.parent / f"zoo_crops_x{scale}{PNG_SUFFIX}", scale)
        if figure is not None:
            figures.append(figure)
    if figures:
        lines += ["", "Centre crops of each benchmark image (nearest-neighbour zoom x2): bicubic | FSRCNN | SwiftRep | ground truth.", ""]
        lines += [f"![{f.stem}]({f.name})" for f in figures]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, ("\n".join(lines) + "\n").encode())
    return out


def calibration_inputs(folder: str | os.PathLike, *, scale: int, channels: int, count: int = 8, side: int = 192) -> list[np.ndarray]:
    """Model inputs for int8 calibration: ``count`` training photos of ``folder`` (evenly
    spaced in name order), a centre crop of ``side`` HR pixels each, MATLAB-bicubic
    downscaled by ``scale`` as the protocol makes LR images, as (1, C, h, w) float32 in the
    model's own terms (RGB in [0, 1], or Y for a luma model)."""
    files = list_images(folder)
    chosen = [files[i * len(files) // count] for i in range(min(count, len(files)))]
    inputs = []
    for path in chosen:
        pixels = read_image(path).pixels
        pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        h, w = pixels.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        crop = pixels[top : top + side, left : left + side]
        x = to_float_tensor(imresize(crop, 1 / scale))  # (1, 3, h, w) in [0, 1], a 16-bit photo on its own peak
        inputs.append((rgb_to_luma_input(x) if channels == 1 else x).numpy())
    return inputs


def _set5_mean_psnr(run, channels: int, items: Sequence[BenchmarkImage], scale: int) -> float:
    """Mean PSNR of a tile runner on prepared benchmark images, rounded to 8 bits as saved."""
    adapted = adapt_channels(run, channels)
    scores = []
    for item in items:
        x = to_float(item.lr).transpose(2, 0, 1)[None]
        sr = from_float(adapted(x)[0].transpose(1, 2, 0), item.lr.dtype)
        scores.append(psnr(sr, item.hr, shave=scale))
    return float(np.mean(scores))


def measure_precisions(
    set5: str | os.PathLike,
    calibration_folder: str | os.PathLike,
    *,
    models: Sequence[tuple[str, int, Path]] | None = None,
    threads: int = 2,
    write: bool = True,
    log=print,
) -> dict[tuple[str, int], dict[str, float]]:
    """The Set5 PSNR change of bf16 (PyTorch autocast) and of int8 (:func:`quantize_int8`,
    calibrated on photos of ``calibration_folder``) against fp32, for every shipped (or
    given) model. With ``write``, each change goes into its weight file's metadata
    (``precision``; the tensors are left byte for byte), where ``precision="auto"`` reads
    the bf16 one, and the int8 graph is written beside the weights where its change is
    within :data:`INT8_MAX_LOSS` (and removed where it is not)."""
    results = {}
    with cpu_threads(threads):
        for name, scale, path in models or shipped_models():
            model = load(path).eval()
            channels = input_channels(model)
            items = _benchmark(str(set5), scale)
            cpu = torch.device("cpu")
            base = _set5_mean_psnr(TorchRunner(model, cpu, "fp32"), channels, items, scale)
            bf16 = _set5_mean_psnr(TorchRunner(model, cpu, "bf16"), channels, items, scale) - base
            graph = quantize_int8(export_onnx(model, scale=scale, name=name), calibration_inputs(calibration_folder, scale=scale, channels=channels))
            int8 = _set5_mean_psnr(OnnxRunner(graph, threads=threads), channels, items, scale) - base
            results[(name, scale)] = {"fp32": base, "bf16": bf16, "int8": int8}
            log(f"{name} x{scale}: Set5 {base:.4f} dB fp32, bf16 {bf16:+.4f}, int8 {int8:+.4f}")
            if write:
                record_metadata(path, {"precision": {"bf16": {"Set5": round(bf16, 4)}, "int8": {"Set5": round(int8, 4)}}})
                target = quantized_path(name, scale)
                if int8 >= -INT8_MAX_LOSS:
                    write_atomic(target, graph)
                elif target.exists():
                    target.unlink()
    return results
