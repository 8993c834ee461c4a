"""The inference API: ``Upscaler`` runs a model on images of any kind, ``load`` builds one by name.

    >>> import superres
    >>> up = superres.load("swiftrep", scale=4)
    >>> big = up.upscale(Image.open("photo.png"))          # PIL in, PIL out

Every kind of image (PIL, numpy uint8/uint16/float, torch tensors, :class:`ImageData`) is
turned into float32 colour planes in [0, 1] plus an optional alpha plane, upscaled by the
tiling engine, and turned back into the kind it came as. Alpha is upscaled apart from the
colour, with MATLAB bicubic (see :meth:`Upscaler.upscale_alpha` for why), after the colour
under fully transparent pixels has been filled from its neighbours (:mod:`.alpha`).
"""

from __future__ import annotations

import copy
import os
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from superres.device import available_memory, bf16_is_fast, cpu_capability, resolve_device, set_cpu_threads, share_of
from superres.errors import SuperresError
from superres.imaging.io import ImageData, from_float, to_float
from superres.imaging.pixels import from_float_tensor, to_float_tensor
from superres.imaging.resize import imresize_torch
from superres.inference.alpha import bleed_colour
from superres.inference.channels import (
    adapt_channels_tensor, hwc_pixels, image_size, join_alpha, numpy_runner, pil_from_pixels, pil_pixels, split_alpha, tensor_runner,
)
from superres.inference.ensemble import self_ensemble
from superres.inference.lanes import MAX_LANES, SMALL_INPUT, Lanes
from superres.inference.onnx import INT8_MAX_LOSS, export_onnx, prepare_for_inference
from superres.inference.runners import OnnxRunner, OpenVinoRunner, TorchRunner
from superres.inference.sizing import OutputSize, check_output_memory, choose_model_scale, fit_planes, output_memory
from superres.inference.tiling import bicubic_planes, choose_tiling, upscale_tiled
from superres.models.checkpoint import precision_change, read_metadata
from superres.models.contract import input_channels, model_contract
from superres.models.probe import probe as run_probe
from superres.options import BACKENDS, DEFAULT_MODEL, DEFAULT_TILE_OVERLAP, PRECISIONS

if TYPE_CHECKING:
    from superres.inference.autopick import Choice

__all__ = ["DEFAULT_MODEL", "DEFAULT_TILE_OVERLAP", "PRECISIONS", "BACKENDS", "Upscaler", "check_options", "load"]

# DEFAULT_TILE_OVERLAP (superres.options): outputs within a third of it (10 px) of a cut are
# discarded, which covers the receptive radius of the small models (Contract.receptive_radius,
# traced for FSRCNN) and most of SwiftRep's (whose far taps weigh little once trained).

#: ``precision="auto"`` runs a model in bf16 only where its weight file records a Set5 PSNR
#: change of bf16 within this (dB), and only on a machine that reports fast bf16
#: (:func:`~superres.device.bf16_is_fast`: from its CPU flags, never a timing).
AUTO_BF16_MAX_LOSS = 0.01

# Largest tile on a CPU. Measured with SwiftRep x4 on a 3840x2160 input (2 threads):
# 1024 px tiles peaked at 3125 MB RSS in 32.5 s, 512 px at 2348 MB in 28.2 s (smaller
# activations stay in cache, which outweighs the extra overlap), 256 px at 2357 MB.
_CPU_MAX_TILE = 512
_GPU_MAX_TILE = 2048
_ROWS_PER_CHUNK = 256


def _bytes_per_pixel(model: nn.Module, channels: int, scale: int) -> float:
    """Peak working memory (float32) per LR pixel, estimated from the largest activation of a
    probe run: three of those alive at once (input, output, a skip) plus input and output."""
    probe = 16
    largest = 0

    def record(_module, _inputs, output):
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        run_probe(model, torch.zeros(1, channels, probe, probe, device=device), record)
    except Exception:  # a model that cannot run a 16x16 probe: assume a wide one
        largest = 256 * probe * probe
    per_pixel = largest / (probe * probe)
    return 4.0 * (3 * per_pixel + channels * (1 + scale * scale))


def _resolve_precision(precision: str, device: torch.device, backend: str, metadata: dict | None = None) -> tuple[str, str]:
    """(precision, why): what the model runs in, and a few words on why."""
    aliases = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
    precision = aliases.get(precision, precision)
    if precision not in PRECISIONS:
        raise SuperresError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if backend == "openvino":
        return _openvino_precision(precision, device, metadata)
    if backend.startswith("onnx"):
        if precision not in ("auto", "fp32"):
            raise SuperresError(f"the ONNX backend runs in fp32 (onnx-int8 in int8), not {precision}")
        return ("int8", "the shipped int8 graph") if backend == "onnx-int8" else ("fp32", "ONNX Runtime")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise SuperresError("fp16 needs a GPU; on the CPU use bf16 or fp32")
        return precision, "asked"
    if device.type == "cuda":
        return "fp16", "auto: CUDA"
    if device.type != "cpu":
        return "fp32", f"auto: {device.type}"
    change = precision_change(metadata or {}, "bf16")
    if change is None:
        return "fp32", "auto: no measured bf16 change for these weights"
    if change < -AUTO_BF16_MAX_LOSS:
        return "fp32", f"auto: bf16 changes Set5 by {change:+.3f} dB"
    if not bf16_is_fast("cpu"):
        return "fp32", f"auto: bf16 is not fast on this CPU ({cpu_capability()})"
    return "bf16", f"auto: fast bf16 on this CPU, Set5 {change:+.3f} dB"


def _openvino_precision(precision: str, device: torch.device, metadata: dict | None) -> tuple[str, str]:
    """OpenVINO's precision: fp32, or bf16 where asked, or under "auto" where PyTorch's would be
    (a fast-bf16 CPU and weights whose bf16 change is recorded within AUTO_BF16_MAX_LOSS)."""
    if device.type != "cpu":
        raise SuperresError(f"the OpenVINO backend runs on the CPU, not {device.type}")
    if precision in ("fp32", "bf16"):
        return precision, "asked"
    if precision == "fp16":
        raise SuperresError("the OpenVINO backend runs in fp32 or bf16, not fp16")
    return _resolve_precision("auto", device, "torch", metadata)


def _int8_graph(name: str, scale: int) -> Path:
    """The shipped int8 graph of ``name`` at ``scale``, or a one-line error saying why there is none."""
    from superres.models.registry import is_registered, list_specs, pretrained_path, quantized_path

    if not is_registered(name):
        raise SuperresError(f"the int8 backend runs only shipped models with an int8 graph, not {name!r} (use --backend onnx)")
    path = quantized_path(name, scale)
    if path.is_file():
        return path
    shipped = [f"{spec.name} x{s}" for spec in list_specs(generators_only=True) for s in spec.scales if quantized_path(spec.name, s).is_file()]
    weights = pretrained_path(name, scale)
    change = precision_change(read_metadata(weights), "int8") if weights.is_file() else None
    why = f": int8 changes its Set5 PSNR by {change:+.2f} dB, over the {INT8_MAX_LOSS} allowed" if change is not None else ""
    hint = f"int8 is shipped for {', '.join(shipped)}" if shipped else "no model has an int8 graph"
    raise SuperresError(f"no int8 graph for {name} x{scale}{why} ({hint}; use --backend onnx or torch)")


class Upscaler:
    """A model ready for inference on images of any size and kind.

    ``model`` is an ``nn.Module`` that maps (B, C, H, W) in [0, 1] to (B, C, sH, sW), C as
    its ``contract`` declares (:mod:`superres.models.contract`; RGB when it declares none);
    a fusable model (:func:`~superres.models.contract.fuse`) is folded into its inference form (on a copy).
    ``device``: "auto", "cpu", "cuda", "cuda:N" or "mps". ``tile``: the tile side in LR
    pixels; None chooses it from the available memory, 0 never tiles. ``tile_overlap``: LR
    pixels shared by neighbouring tiles (default 32). ``precision``: "auto" (fp16 on CUDA;
    bf16 on a CPU that reports fast bf16, for weights whose file records a Set5 change of
    bf16 within :data:`AUTO_BF16_MAX_LOSS` dB; else fp32), "fp32", "fp16" (CUDA) or "bf16"
    (autocast; falls back to fp32 when the output is not finite); ``precision_reason`` says
    why. ``backend``: "torch"; "onnx" (the model is exported to ONNX in memory and run by
    ONNX Runtime, fp32); or "onnx-int8" (the shipped int8 graph of a registered model, run by
    ONNX Runtime); or "openvino" (the same graph compiled by OpenVINO on the CPU; fp32, or
    bf16 where "auto" would run PyTorch in bf16; the openvino extra). ``threads``: CPU threads, for ONNX Runtime's
    session and for PyTorch (process-wide, as PyTorch's setting is; None leaves them).
    ``batch_size``: tiles (or video frames) per model call; None chooses it from memory.
    ``ensemble``: run the self-ensemble (:mod:`.ensemble`: eight flips and rotations of each
    tile, averaged; a little sharper, about 8x the time).

    ``output``: an :class:`~superres.inference.sizing.OutputSize` (a factor such as 1.5, or a
    width and/or height) that every result is brought to exactly, instead of ``scale`` x the
    input; per image, the model of the scale that :func:`~.sizing.choose_model_scale` picks
    runs and MATLAB bicubic resizes its output (:mod:`.sizing` says why). ``scales`` are the
    model scales to pick from and ``loader(scale)`` builds a model of another scale than
    ``model``'s (with the same options); without them only ``model`` runs.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        scale: int,
        name: str,
        device: str | torch.device = "auto",
        tile: int | None = None,
        tile_overlap: int | None = None,
        precision: str = "auto",
        backend: str = "torch",
        batch_size: int | None = None,
        threads: int | None = None,
        ensemble: bool = False,
        output: OutputSize | None = None,
        scales: Sequence[int] | None = None,
        loader: Callable[[int], nn.Module] | None = None,
    ):
        check_options(backend=backend, tile=tile, tile_overlap=tile_overlap, batch_size=batch_size, threads=threads)
        graph = getattr(model, "onnx_graph", None)  # an exported graph loaded as a model (superres.models.onnx_graph)
        if graph is not None and backend == "torch":
            backend = "onnx"  # it runs on ONNX Runtime only
        model_scale = model_contract(model).scale or scale
        if model_scale != scale:
            raise SuperresError(f"{name!r} is a x{model_scale} model, not x{scale}")
        if output is not None and not isinstance(output, OutputSize):
            raise TypeError(f"output must be an OutputSize or None, not {type(output).__name__}")
        self.scale = int(scale)
        self.name = name
        self.backend = backend
        self.device = resolve_device("cpu" if backend == "openvino" and device == "auto" else device)  # OpenVINO: CPU here
        self.precision, self.precision_reason = _resolve_precision(precision, self.device, backend, getattr(model, "superres_metadata", None))
        self.tile = tile
        self.tile_overlap = DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap
        self.batch_size = batch_size
        self.threads = threads
        self.ensemble = bool(ensemble)
        self.output = output
        self.scales = tuple(sorted(set(scales or ()) | {self.scale})) if loader is not None else (self.scale,)
        self._loader = loader
        self._engines: dict[int, Upscaler] = {self.scale: self}
        self._auto: _Auto | None = None  # set by load("auto"): a model chosen per image (pick)
        self._options = dict(
            device=self.device, tile=tile, tile_overlap=tile_overlap, precision=precision, backend=backend,
            batch_size=batch_size, threads=threads, ensemble=ensemble,
        )
        set_cpu_threads(threads)  # PyTorch's, whichever the backend: the colour split and bicubic run on it too

        model = prepare_for_inference(model)
        self.channels = input_channels(model)
        self.bytes_per_pixel = _bytes_per_pixel(model, self.channels, self.scale)
        if backend == "torch":
            self.runner: TorchRunner | OnnxRunner | OpenVinoRunner = TorchRunner(model, self.device, self.precision)
        elif backend == "onnx":
            source = graph if graph is not None else export_onnx(model, scale=self.scale, name=name)
            self.runner = OnnxRunner(source, threads=threads, device=self.device)
        elif backend == "openvino":
            source = graph if graph is not None else export_onnx(model, scale=self.scale, name=name)
            self.runner = OpenVinoRunner(source, threads=threads, precision=self.precision)
        else:
            self.runner = OnnxRunner(_int8_graph(name, self.scale), threads=threads, device=self.device)
        forward = tensor_runner(self_ensemble(self.runner)) if self.ensemble else self.runner.forward
        # Inside the channel adapter: a luma model ensembles its Y, and the bicubic chroma,
        # which no flip changes, is made once. One adapted model, on tensors (the whole-image
        # path) and on numpy planes (the tiles), so both give the same numbers.
        self._forward = adapt_channels_tensor(forward, self.channels)
        self._run = numpy_runner(self._forward)

    def __repr__(self) -> str:
        tile = "auto" if self.tile is None else self.tile
        plus = "+" if self.ensemble else ""
        size = "" if self.output is None else f" -> {self.output.label}"
        return f"Upscaler({self.name!r}, x{self.scale}{plus}{size}, {self.device}, {self.backend}, {self.precision}, tile={tile})"

    def output_size(self, height: int, width: int, output: OutputSize | None = None) -> tuple[int, int]:
        """The (height, width) of the result for an input of ``height`` x ``width`` (with
        ``output`` in place of the Upscaler's own, if given)."""
        output = self.output if output is None else output
        if output is None:
            return height * self.scale, width * self.scale
        return output.plan(height, width).size

    def check_memory(
        self, height: int, width: int, *, channels: int = 3, alpha: bool = False, frames: int = 1, itemsize: int = 1,
        output: OutputSize | None = None,
    ) -> int:
        """Refuse, before any work, a result whose planned peak memory
        (:func:`~.sizing.output_memory`) is over the budget (:func:`~.sizing.check_output_memory`), with one line naming its
        size; returns the planned bytes. Every upscale calls it first, so the CLI, the web
        app and Python share the limit."""
        output = self.output if output is None else output
        model_size = None
        if output is not None:
            scale = choose_model_scale(output.plan(height, width).factor, self.scales)
            model_size = (height * scale, width * scale)
        out_size = self.output_size(height, width, output)
        needed = output_memory(out_size, model_size, channels=channels, alpha=alpha, frames=frames, itemsize=itemsize)
        return check_output_memory((height, width), out_size, needed, frames=frames)

    def _engine_for(self, factor: float) -> Upscaler:
        """The Upscaler (this one or a sibling of another model scale) that reaches ``factor``."""
        scale = choose_model_scale(factor, self.scales)
        if scale not in self._engines:
            self._engines[scale] = Upscaler(self._loader(scale), scale=scale, name=self.name, **self._options)
        return self._engines[scale]

    @property
    def is_auto(self) -> bool:
        """Whether this Upscaler chooses its model per image (``load("auto")``, :meth:`pick`)."""
        return self._auto is not None

    def pick(self, image) -> tuple[Upscaler, Choice | None]:
        """The Upscaler that runs ``image`` (any kind :meth:`upscale` takes) and, for an
        ``auto`` Upscaler, the :class:`~superres.inference.autopick.Choice` that named it: the
        fidelity model that suits the image (:mod:`superres.inference.autopick`), loaded on
        first use with this Upscaler's options. Any other Upscaler runs every image itself
        (the choice is None). :meth:`upscale` and :meth:`upscale_image_data` pick by
        themselves; a caller that reports the choice (the CLI, the web app) picks first and
        runs the image on the Upscaler returned."""
        if self._auto is None:
            return self, None
        from superres.inference.autopick import decide, measure

        size = image_size(image)  # None for an animation: judged at the Upscaler's own scale
        model_scale = self.scale
        if self.output is not None and size is not None:
            model_scale = choose_model_scale(self.output.plan(*size).factor, self.scales)
        choice = decide(measure(image), model_scale, self._auto.available)
        return self._auto.engine(choice.name), choice

    @property
    def fell_back_to_fp32(self) -> bool:
        """Whether a non-finite fp16/bf16 output made the model switch to fp32."""
        return bool(getattr(self.runner, "fell_back", False))

    def tiling_for(self, height: int, width: int) -> tuple[int, int]:
        """(tile, batch) that an ``height`` x ``width`` image is upscaled with; tile 0 = whole.

        On a GPU, tiles are batched as memory allows (up to 8). On the CPU a batch of large
        tiles is no faster than one tile at a time and multiplies the memory, so tiles go one
        by one; only whole images (video frames) are batched, up to 4.
        """
        cuda = self.device.type == "cuda"
        if self.tile is None:
            tile, batch = choose_tiling(
                height,
                width,
                bytes_per_pixel=self.bytes_per_pixel,
                available=available_memory(self.device),
                max_tile=_GPU_MAX_TILE if cuda else _CPU_MAX_TILE,
                max_batch=8 if cuda else 4,
                batch_size=self.batch_size,
            )
        else:
            tile = self.tile
            area = min(tile, height) * min(tile, width) if tile else height * width
            fits = int(share_of(available_memory(self.device)) // (self.bytes_per_pixel * area))
            batch = self.batch_size or max(1, min(8 if cuda else 4, fits))
        if self.batch_size is None and not cuda and tile and max(height, width) > tile:
            batch = 1
        return tile, batch

    # ------------------------------------------------------------------ the float core

    def upscale_planes(
        self,
        colour: np.ndarray,
        alpha: np.ndarray | None = None,
        *,
        progress: bool | Callable[[int, int], object] = False,
        output: OutputSize | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Upscale float32 colour (C, H, W) in [0, 1] (C = 1 or 3) and optional alpha (H, W);
        return (C, H', W') and (H', W') float32, clipped to [0, 1], where (H', W') is
        :meth:`output_size` (sH, sW without ``output``). ``output`` replaces the Upscaler's
        own for this call (a server that takes the size with each request)."""
        output = self.output if output is None else output
        self.check_memory(*colour.shape[1:], channels=colour.shape[0], alpha=alpha is not None, itemsize=4, output=output)
        if alpha is not None:
            colour = bleed_colour(colour.transpose(1, 2, 0), alpha).transpose(2, 0, 1)
        if output is None:
            return self._model_planes(colour, progress), None if alpha is None else self.upscale_alpha(alpha)
        plan = output.plan(*colour.shape[1:])
        out = fit_planes(self._engine_for(plan.factor)._model_planes(colour, progress), plan)
        np.clip(out, 0.0, 1.0, out=out)
        if alpha is None:
            return out, None
        # Straight from the input to the size: one bicubic pass, not the model scale's then a second.
        out_alpha = fit_planes(np.asarray(alpha, dtype=np.float32)[None], plan)[0]
        return out, np.clip(out_alpha, 0.0, 1.0, out=out_alpha)

    def _model_planes(self, colour: np.ndarray, progress) -> np.ndarray:
        """(C, H, W) -> (C, sH, sW): the model on tiles, clipped to [0, 1]."""
        tile, batch = self.tiling_for(*colour.shape[1:])
        out = upscale_tiled(
            self._run, colour, scale=self.scale, tile=tile, overlap=self.tile_overlap, batch_size=batch, progress=progress
        )
        return np.clip(out, 0.0, 1.0, out=out)

    def upscale_alpha(self, alpha: np.ndarray) -> np.ndarray:
        """An (H, W) float alpha plane upscaled with MATLAB bicubic, clipped to [0, 1].

        Bicubic rather than the model: its weights sum to 1, so a fully transparent
        background stays exactly 0 and an opaque interior exactly 1, where a learned model
        trained on photographs leaves faint noise, and it cannot invent texture in a mask.
        Its softer edge shows no fringe, because the colour beyond the edge has been filled
        with the shape's own colour. It costs a small fraction of a model pass.
        """
        out = bicubic_planes(np.asarray(alpha)[None], self.scale)[0]
        return np.clip(out, 0.0, 1.0, out=out)

    def upscale_frames(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale same-sized (H, W, C) uint8 frames (video), several per model call when
        they fit; returns uint8 frames of :meth:`output_size`."""
        if not frames:
            return []
        height, width = frames[0].shape[:2]
        self.check_memory(height, width, channels=frames[0].shape[2], frames=len(frames))
        if self.output is not None:
            plan = self.output.plan(height, width)
            out = []
            for frame in self._engine_for(plan.factor).upscale_frames(frames):
                planes = fit_planes(frame.transpose(2, 0, 1).astype(np.float32) / np.float32(255), plan)
                out.append(_planes_to_pixels(np.clip(planes, 0.0, 1.0, out=planes), np.uint8))
            return out
        batch = self._fused_batch(height, width, None)
        if not batch:
            return [self.upscale(frame) for frame in frames]
        out = []
        for first in range(0, len(frames), batch):
            out += [pixels for pixels, _ in self._whole_images(frames[first : first + batch])]
        return out

    def upscale_batch(self, images: Sequence[np.ndarray], alphas: Sequence[np.ndarray | None] | None = None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Upscale (H, W, C) uint8 or uint16 images (C = 1 or 3), each with an optional (H, W)
        alpha of its dtype; return (pixels, alpha) per image, as :meth:`upscale_image_data`
        would. Images of one size, dtype and channel count that fit one model call go
        through the model together (up to the batch :meth:`tiling_for` allows), the rest
        one by one: for a folder of small photos, or video frames."""
        alphas = list(alphas) if alphas is not None else [None] * len(images)
        if len(alphas) != len(images):
            raise ValueError(f"{len(images)} images but {len(alphas)} alpha planes")
        results: list = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, pixels in enumerate(images):
            groups.setdefault((pixels.shape, pixels.dtype.str), []).append(i)
        for (shape, _dtype), members in groups.items():
            batch = self._fused_batch(*shape[:2], self.output)
            if not batch:
                for i in members:
                    results[i] = self._upscale_integer(images[i], alphas[i], False, None)
                continue
            for first in range(0, len(members), batch):
                chunk = members[first : first + batch]
                for i, result in zip(chunk, self._whole_images([images[i] for i in chunk], [alphas[i] for i in chunk])):
                    results[i] = result
        return results

    @property
    def lane_count(self) -> int:
        """How many lanes this model's small images run in (:mod:`.lanes`): PyTorch's thread
        count, up to :data:`~.lanes.MAX_LANES`, on a CPU with the torch backend; else 1 (no lanes)."""
        if self.device.type != "cpu" or self.backend != "torch":
            return 1
        return min(torch.get_num_threads(), MAX_LANES)

    def takes_lane(self, image) -> bool:
        """Whether ``image`` (any kind :meth:`upscale` takes) goes to a lane: one still of at
        most :data:`~.lanes.SMALL_INPUT` pixels that goes through the model whole, in one call
        at the model's own scale (no tiles, no output size). An animation's frames run one
        after another, by themselves; a kind ``upscale`` refuses takes none (it raises there)."""
        size = image_size(image)
        return size is not None and size[0] * size[1] <= SMALL_INPUT and self.fits_one_call(*size)

    def fits_one_call(self, height: int, width: int) -> bool:
        """Whether an ``height`` x ``width`` image goes through the model whole, in one call
        at the model's own scale (the fused path: no tiles, no output size)."""
        return bool(self._fused_batch(height, width, self.output))

    def _fused_batch(self, height: int, width: int, output: OutputSize | None) -> int:
        """How many ``height`` x ``width`` images go through the model together, each whole, on
        the fused path (:meth:`_whole_images`); 0 where they take the float planes instead
        (tiles, or an output size)."""
        tile, batch = self.tiling_for(height, width)
        return 0 if output is not None or (tile and max(height, width) > tile) else batch

    def _whole_images(self, images: Sequence[np.ndarray], alphas: Sequence[np.ndarray | None] | None = None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Same-sized (H, W, C) integer images, each whole in one model call, all in one batch:
        the fused path. From the decoded pixels to the encoded ones in torch (float32, as the
        tiled path computes, so the colour comes out pixel-exact; the bicubic alpha is float32
        here and float64 there, within 1 LSB); no tiling machinery, no numpy float planes."""
        dtype = images[0].dtype
        alphas = [None if alpha is None else to_float(alpha) for alpha in alphas or [None] * len(images)]
        with torch.inference_mode():
            x = to_float_tensor(np.stack(images) if len(images) > 1 else images[0])  # (B, C, H, W) in [0, 1]
            for i, alpha in enumerate(alphas):
                if alpha is not None:
                    x[i] = torch.from_numpy(bleed_colour(x[i].permute(1, 2, 0).numpy(), alpha)).permute(2, 0, 1)
            pixels = from_float_tensor(self._forward(x), dtype)  # (B, sH, sW, C)
            out = []
            for image, alpha in zip(pixels, alphas):
                if alpha is not None:
                    alpha = from_float_tensor(imresize_torch(torch.from_numpy(alpha)[None, None], self.scale), dtype)[0, ..., 0]
                out.append((image, alpha))
        return out

    def _upscale_integer(self, pixels: np.ndarray, alpha: np.ndarray | None, progress, output: OutputSize | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W, C) uint8/uint16 and its alpha: the fused path when the image fits one model
        call at the model's own scale, else the float planes (tiles, output sizes)."""
        output = self.output if output is None else output
        if self._fused_batch(*pixels.shape[:2], output):
            self.check_memory(*pixels.shape[:2], channels=pixels.shape[2], alpha=alpha is not None, itemsize=pixels.dtype.itemsize)
            (result, out_alpha), = self._whole_images([pixels], [alpha])
            if callable(progress):
                progress(1, 1)
            return result, out_alpha
        colour = to_float(pixels).transpose(2, 0, 1)
        out, out_alpha = self.upscale_planes(colour, None if alpha is None else to_float(alpha), progress=progress, output=output)
        dtype = pixels.dtype
        return _planes_to_pixels(out, dtype), None if out_alpha is None else _planes_to_pixels(out_alpha[None], dtype)[..., 0]

    # ------------------------------------------------------------------ kinds of image

    def upscale_image_data(
        self, image: ImageData, *, progress: bool | Callable[[int, int], object] = False, output: OutputSize | None = None
    ) -> ImageData:
        """Upscale a decoded image file: bit depth (8 or 16), grayscale or RGB, the alpha plane,
        the ICC profile and EXIF are kept (the orientation was applied when it was read).
        Every frame of an animation is upscaled; its durations, loop count and disposal
        methods are kept. ``output`` as in :meth:`upscale_planes`. An ``auto`` Upscaler runs
        the model it picks for the image (:meth:`pick`)."""
        if self._auto is not None:
            return self.pick(image)[0].upscale_image_data(image, progress=progress, output=output)
        frames = 1 if image.animation is None else len(image.animation.frames) + 1
        self.check_memory(
            *image.size, channels=image.pixels.shape[2], alpha=image.alpha is not None, frames=frames,
            itemsize=image.pixels.dtype.itemsize, output=output,
        )
        first = self._upscale_still(image, progress, output)
        animation = None
        if image.animation is not None:
            animation = image.animation.replace_frames([self._upscale_still(f, False, output) for f in image.animation.frames])
        return ImageData(
            pixels=first.pixels, alpha=first.alpha, icc_profile=image.icc_profile, exif=image.exif, format=image.format, animation=animation
        )

    def _upscale_still(self, image: ImageData, progress, output: OutputSize | None) -> ImageData:
        pixels, alpha = self._upscale_integer(image.pixels, image.alpha, progress, output)
        return ImageData(pixels=pixels, alpha=alpha)

    def upscale(self, image):
        """Upscale ``image`` and return the same kind:

        - a PIL image (L, LA, RGB, RGBA, I;16, I, F; other modes are converted to RGB(A)
          or L first and come back in that mode), with its ICC profile and EXIF in ``info``;
        - a numpy array HxW or HxWxC (C = 1, 2 = grey + alpha, 3, 4 = RGBA), uint8, uint16
          or float in [0, 1];
        - a float torch tensor (C, H, W) or (B, C, H, W), C as for numpy, returned on its
          device and in its dtype.

        Outputs are clipped to [0, 1] (to the integer type's range). An ``auto`` Upscaler
        runs the model it picks for the image (:meth:`pick`; a batch tensor by its first image).
        """
        from PIL import Image

        if self._auto is not None:
            return self.pick(image)[0].upscale(image)
        if isinstance(image, ImageData):
            return self.upscale_image_data(image)
        if isinstance(image, Image.Image):
            return self._upscale_pil(image)
        if isinstance(image, np.ndarray):
            return self._upscale_numpy(image)
        if isinstance(image, torch.Tensor):
            return self._upscale_tensor(image)
        raise TypeError(f"cannot upscale a {type(image).__name__}: pass a PIL image, a numpy array, a torch tensor or an ImageData")

    def upscale_many(self, images: Iterable) -> Iterator:
        """:meth:`upscale` of each of ``images``, yielded in their order as they are done: a
        folder of photos or a stream of frames already in memory. On a CPU, small images
        (:meth:`takes_lane`) run in parallel lanes of one PyTorch thread each, which
        keeps the cores busy where one call at a time cannot (:mod:`.lanes`); the rest run
        one at a time with all the threads. A few images are taken ahead of the one yielded.
        PyTorch's thread count is the process's: another thread of the caller that runs
        PyTorch meanwhile runs on one thread too."""
        with Lanes(self.lane_count) as lanes:
            pending: deque[Future] = deque()
            for image in images:
                pending.append(lanes.submit(self.upscale, image) if self.takes_lane(image) else lanes.solo(self.upscale, image))
                while len(pending) > 2 * lanes.count:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _upscale_hwc(self, array: np.ndarray) -> np.ndarray:
        """(H, W, C) float32 -> (sH, sW, C) float32; C = 2 and 4 carry alpha last."""
        colour, alpha = split_alpha(array)
        out, out_alpha = self.upscale_planes(colour.transpose(2, 0, 1), alpha)
        return join_alpha(out.transpose(1, 2, 0), out_alpha)

    def _upscale_numpy(self, array: np.ndarray) -> np.ndarray:
        hwc = hwc_pixels(array)
        if array.dtype in (np.uint8, np.uint16):
            result = join_alpha(*self._upscale_integer(*split_alpha(hwc), False, None))
        else:
            result = self._upscale_hwc(hwc.astype(np.float32)).astype(array.dtype, copy=False)
        return result[..., 0] if array.ndim == 2 else result

    def _upscale_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if not tensor.is_floating_point():
            raise TypeError(f"expected a float tensor in [0, 1], got {tensor.dtype}")
        if tensor.ndim not in (3, 4):
            raise ValueError(f"expected a (C, H, W) or (B, C, H, W) tensor, got shape {tuple(tensor.shape)}")
        batch = tensor[None] if tensor.ndim == 3 else tensor
        outs = []
        for image in batch:
            hwc = image.detach().float().cpu().permute(1, 2, 0).numpy()
            outs.append(torch.from_numpy(np.ascontiguousarray(self._upscale_hwc(hwc).transpose(2, 0, 1))))
        result = torch.stack(outs).to(device=tensor.device, dtype=tensor.dtype)
        return result[0] if tensor.ndim == 3 else result

    def _upscale_pil(self, image):
        array, mode = pil_pixels(image)
        return pil_from_pixels(self._upscale_numpy(array), mode, image.info)


class _Auto:
    """An auto Upscaler's models: each loaded on first use, with the options it was loaded with."""

    def __init__(self, load_named: Callable[[str], Upscaler], loaded: dict[str, Upscaler]):
        from superres.inference.autopick import shipped_scales

        self._load_named = load_named
        self._engines = dict(loaded)
        self._lock = threading.Lock()  # lanes pick from several threads at once
        self.available = shipped_scales()  # read once: the weight files do not change under a run

    def engine(self, name: str) -> Upscaler:
        with self._lock:
            if name not in self._engines:
                self._engines[name] = self._load_named(name)
            return self._engines[name]


def _planes_to_pixels(planes: np.ndarray, dtype) -> np.ndarray:
    """(C, H, W) float in [0, 1] to (H, W, C) ``dtype`` (uint8/uint16), a band of rows at a
    time so that a large image is never held a second time as float temporaries."""
    channels, height, width = planes.shape
    pixels = np.empty((height, width, channels), dtype=dtype)
    for top in range(0, height, _ROWS_PER_CHUNK):
        band = planes[:, top : top + _ROWS_PER_CHUNK].transpose(1, 2, 0)
        pixels[top : top + _ROWS_PER_CHUNK] = from_float(band, dtype)
    return pixels


def check_options(
    *,
    backend: str = "torch",
    tile: int | None = None,
    tile_overlap: int | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
) -> None:
    """Raise a one-line :class:`SuperresError` for an :class:`Upscaler` option out of range;
    :func:`load` calls it before the model loads, so a mistake costs no time."""
    if backend not in BACKENDS:
        raise SuperresError(f"unknown backend {backend!r} (use {' or '.join(BACKENDS)})")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0 or 0 < tile < 16):
        raise SuperresError(f"tile must be 0 (no tiling) or at least 16 pixels, got {tile!r}")
    if tile_overlap is not None and (not isinstance(tile_overlap, int) or tile_overlap < 0):
        raise SuperresError(f"tile overlap must be a non-negative number of pixels, got {tile_overlap!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise SuperresError(f"batch size must be a positive integer, got {batch_size!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise SuperresError(f"threads must be a positive integer, got {threads!r}")


def load(
    model: str | os.PathLike = DEFAULT_MODEL,
    scale: float | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
    fit: str = "cover",
    strength: float | None = None,
    fidelity: str | os.PathLike | None = None,
    **upscaler_options,
) -> Upscaler:
    """An :class:`Upscaler` for ``model``: a registry name (with its shipped weights) or a
    checkpoint file.

    The result's size is ``scale`` x the input (default: the scale a model file states, such as
    a superres ONNX graph or safetensors file, else 4; any factor above 1, e.g. 1.5), or
    ``width`` and/or ``height`` pixels (one alone keeps the aspect ratio; both are fitted
    by ``fit``: "cover", "contain" or "stretch", see :mod:`superres.inference.sizing`).
    A scale the model has runs that model alone, as always; any other size runs the model
    of the next scale above and resizes its output down (or, above its largest, up).
    ``upscaler_options`` are :class:`Upscaler`'s (device, tile, tile_overlap, precision,
    backend, batch_size, threads, ensemble).

    ``strength`` (a perceptual model with a fidelity partner, e.g. ``swiftrep-real-gan``):
    1 is the perceptual model, 0 its fidelity partner, values between blend their weights
    (:func:`superres.models.pretrained.load_blended`); None is the model as it is.
    ``fidelity`` names the partner (a registry name or a checkpoint file of the same
    architecture) where the model's registry entry does not.

    ``model="auto"``: per image, the fidelity model that suits it (the clean flagship, the
    light model for JPEGs and noise, the real-world model for blurred pictures; see
    :mod:`superres.inference.autopick` and :meth:`Upscaler.pick`). The Upscaler returned
    holds the flagship, which runs what is not picked per image (videos, DICOM, GeoTIFF).
    """
    from superres.inference.autopick import AUTO
    from superres.models import load_for_scale
    from superres.models.pretrained import check_strength, declared_scale, load_blended
    from superres.models.registry import is_registered

    checked = ("backend", "tile", "tile_overlap", "batch_size", "threads")
    check_options(**{k: v for k, v in upscaler_options.items() if k in checked})
    model = os.fspath(model)
    if model == AUTO:
        if strength is not None or fidelity is not None:
            raise SuperresError("auto chooses among fidelity models: it takes no strength or fidelity")
        return _load_auto(scale, dict(width=width, height=height, fit=fit), upscaler_options)
    check_strength(model, strength, fidelity)
    sized = width is not None or height is not None
    if not sized and scale is None:
        # A file that states its scale (superres safetensors, a superres ONNX graph) is used at it.
        scale = (declared_scale(model) if not is_registered(model) else None) or 4
    if not sized and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise SuperresError(f"scale must be a number above 1, got {scale!r}")
    output = OutputSize(scale=scale, width=width, height=height, fit=fit) if sized else None

    checkpoint, scales, name = _find_model(model, scale)
    if checkpoint is not None and output is None and float(scale).is_integer() and int(scale) not in scales:
        # A whole scale that is not the file's is more likely the wrong file than a wish.
        raise SuperresError(f"'{model}' is a x{scales[0]} model, not x{int(scale)}")
    if output is None and float(scale).is_integer() and int(scale) in scales:
        model_scale = int(scale)  # the model of the asked scale alone: no resize after it
    elif not scales:
        raise _no_weights(model, scale)
    else:
        if output is None:
            output = OutputSize(scale=float(scale))
        # A width or height gives its factor only per image: start with the largest model,
        # which covers every factor up to its scale; the others load when an image needs them.
        model_scale = choose_model_scale(output.scale or max(scales), scales)
    if strength is not None:
        name = f"{name}@{float(strength):g}"
        if checkpoint is not None:
            checkpoint = load_blended(model, model_scale, strength, fidelity=fidelity, perceptual=checkpoint)
    if checkpoint is not None:
        return Upscaler(checkpoint, scale=model_scale, name=name, output=output, **upscaler_options)

    def loader(s: int):
        return load_for_scale(model, s) if strength is None else load_blended(model, s, strength, fidelity=fidelity)

    return Upscaler(loader(model_scale), scale=model_scale, name=name, output=output, scales=scales, loader=loader, **upscaler_options)


def _no_weights(model: str, scale: float | None) -> SuperresError:
    """The one-line error for a registry name without weights at hand: that none are shipped
    (a reference model without its extra raises the extra's line instead)."""
    from superres.models import pretrained_path
    from superres.models.registry import require_external

    require_external(model)  # a reference model without its extra: that one line
    if model == DEFAULT_MODEL:
        return SuperresError(
            f"the default model {DEFAULT_MODEL!r} has no shipped weights for x{scale or 4:g} yet "
            f"(expected {pretrained_path(model, 4).name} in superres/models/weights); "
            "choose another model (-m bicubic, or -m a checkpoint file)"
        )
    return SuperresError(f"no pretrained weights for {model!r} (no shipped scales; pass a checkpoint file)")


def _load_auto(scale: float | None, sizing: dict, upscaler_options: dict) -> Upscaler:
    """The auto Upscaler: it holds the flagship (what is not picked per image runs it) and
    loads each model it picks on first use, with the same options."""
    from superres.inference.autopick import AUTO, CLEAN

    flagship = load(CLEAN, scale, **sizing, **upscaler_options)
    upscaler = copy.copy(flagship)  # the same loaded model; the flagship itself stays a plain engine
    upscaler.name = AUTO
    upscaler._auto = _Auto(lambda name: load(name, scale, **sizing, **upscaler_options), {CLEAN: flagship})
    return upscaler


def _find_model(model: str, scale: float | None) -> tuple[nn.Module | None, tuple[int, ...], str]:
    """(the checkpoint's model, or None for a registry name; the scales with weights; the
    name results are labelled with) for what :func:`load` was given."""
    from superres.models import get_spec, has_parameters
    from superres.models import load as load_checkpoint
    from superres.models.registry import is_registered

    if is_registered(model):
        spec = get_spec(model)
        # Shipped weights answer first: whether a model has parameters at all costs a second to learn.
        return None, spec.pretrained_scales() or (spec.scales if not has_parameters(model) else ()), spec.name
    if Path(model).exists():
        checkpoint = load_checkpoint(model)  # a checkpoint file: one model, of its own scale
        return checkpoint, (int(model_contract(checkpoint).scale or scale or 0),), Path(model).stem
    raise SuperresError(f"{model!r} is neither a registered model nor a file (see 'superres models')")
