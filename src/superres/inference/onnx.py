"""ONNX export, checked against PyTorch under ONNX Runtime.

``export_onnx`` writes a model with a dynamic batch, height and width (opset 17 by default)
through PyTorch's TorchScript-based exporter (the dynamo exporter needs onnxscript, which is
not a dependency), then checks it: ONNX Runtime and PyTorch must agree on an input of a size
other than the one traced, so a model whose graph froze its input size (bicubic, whose
resize matrices are computed from the shape in numpy) is refused instead of written.

The exported graph runs as a tile runner like the PyTorch one
(:class:`superres.inference.runners.OnnxRunner`).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from superres.atomic import write_atomic
from superres.errors import SuperresError
from superres.extras import require
from superres.inference.runners import OnnxRunner
from superres.models.contract import Contract, fuse, model_contract

__all__ = ["DEFAULT_OPSET", "INPUT_DESCRIPTIONS", "INT8_MAX_LOSS", "export_onnx", "graph_metadata", "max_abs_difference", "prepare_for_inference", "quantize_int8"]

DEFAULT_OPSET = 17

#: An int8 graph is shipped for a model only where it changes the model's Set5 PSNR by at
#: most this (dB).
INT8_MAX_LOSS = 0.05

# The size the graph is traced at and the size it is checked at: different, and odd, so that
# anything the trace froze (shapes, padding arithmetic) shows up as a mismatch.
_TRACE_SIZE = (32, 32)
_CHECK_SIZE = (23, 37)
_PARITY_TOLERANCE = 1e-4
# fp16 rounds each weight and activation to 11 bits: differences of a few 1e-3 are its own.
_FP16_PARITY_TOLERANCE = 1e-2

#: What an exported graph takes, by channel count (the models' own words,
#: :class:`superres.models.contract.Contract`); a luma model's users must split YCbCr themselves.
INPUT_DESCRIPTIONS = {channels: Contract(channels).description for channels in (1, 3)}


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode without gradients, folded into its inference form when
    it is fusable (:func:`superres.models.contract.fuse`: SwiftRep). A copy, so that a model still in training (a
    preview during a run) keeps its mode, its gradients, its device and its branches."""
    model = copy.deepcopy(model)
    fuse(model)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike | None = None,
    *,
    scale: int | None = None,
    name: str | None = None,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
) -> bytes:
    """Export ``model`` to ONNX with dynamic batch, height and width; return the file's bytes
    and, given ``path``, also write them there (atomically).

    The graph's input is ``input`` (B, C, H, W) in [0, 1] and its output ``output``
    (B, C, sH, sW), float32, or float16 throughout with ``fp16`` (weights, input and output;
    half the file). The file describes itself in its ``metadata_props`` (:func:`graph_metadata`:
    scale, channel order, input range, registry name, version, licence, measured Set5 PSNR),
    so that superres loads it back as a model (:mod:`superres.models.onnx_graph`) and any
    ONNX Runtime script can read what it takes. Raises :class:`SuperresError` if the export
    fails or the exported graph disagrees with PyTorch on an input of another size (by more
    than 1e-4, or 1e-2 in fp16).
    """
    onnx = require("onnx", extra="onnx", purpose="ONNX export")

    label = name or type(model).__name__
    if getattr(model, "onnx_graph", None) is not None:
        raise SuperresError(f"cannot export {label!r} to ONNX: it is an ONNX graph already; export the weights it came from")
    model = prepare_for_inference(model).cpu()
    contract = model_contract(model)
    traced = copy.deepcopy(model).half() if fp16 else model
    dummy = torch.rand(1, contract.channels, *_TRACE_SIZE, dtype=torch.float16 if fp16 else torch.float32)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                traced,
                (dummy,),
                buffer,
                input_names=["input"],
                output_names=["output"],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_height", 3: "out_width"}},
            )
    except Exception as exc:  # the exporter raises many types; each is a model it cannot express
        raise SuperresError(f"cannot export {label!r} to ONNX: {' '.join(str(exc).split())[:300]}") from None
    graph = onnx.load_from_string(buffer.getvalue())
    from superres import __version__

    graph.producer_name, graph.producer_version = "superres", __version__
    for key, value in graph_metadata(model, scale=scale, name=name, fp16=fp16).items():
        graph.metadata_props.add(key=key, value=value)
    data = graph.SerializeToString()

    difference = max_abs_difference(model, data, size=_CHECK_SIZE)
    tolerance = _FP16_PARITY_TOLERANCE if fp16 else _PARITY_TOLERANCE
    if not difference <= tolerance:
        raise SuperresError(
            f"cannot export {label!r} to ONNX: the exported graph differs from PyTorch by {difference:.3g} on a "
            f"{_CHECK_SIZE[0]}x{_CHECK_SIZE[1]} input (it does not support dynamic sizes)"
        )
    if path is not None:
        _write(Path(path), data)
    return data


def graph_metadata(model: nn.Module, *, scale: int | None = None, name: str | None = None, fp16: bool = False) -> dict[str, str]:
    """What an exported graph says about itself (its ONNX ``metadata_props``), each under
    ``superres.``: ``scale``; ``channel_order`` ("RGB", or "Y" for a luma model) and
    ``input_range`` ("0-1", the same for the output); ``input`` in words; ``arch`` (the
    registry name) and ``name`` (what it was exported as); ``precision`` ("fp32", "fp16");
    ``version`` (of superres, which ships the weights) and ``license``; ``set5_psnr`` and
    ``set14_psnr`` (dB, Y channel) where the weights record them."""
    from superres import __version__
    from superres.models.registry import WEIGHTS_LICENSE

    contract = model_contract(model)
    arch = getattr(model, "superres_arch", None) or name
    quality = (getattr(model, "superres_metadata", None) or {}).get("quality") or {}
    described = {
        "arch": arch,
        "name": name or arch,
        "scale": scale or getattr(model, "scale", None),
        "channel_order": contract.colour_space,
        "input_range": "0-1",
        "input": contract.description,
        "precision": "fp16" if fp16 else "fp32",
        "version": __version__,
        "license": WEIGHTS_LICENSE,
        "set5_psnr": (quality.get("Set5") or {}).get("psnr"),
        "set14_psnr": (quality.get("Set14") or {}).get("psnr"),
    }
    return {f"superres.{key}": str(value) for key, value in described.items() if value is not None}


def quantize_int8(onnx_model: bytes, calibration: Sequence[np.ndarray]) -> bytes:
    """Static post-training quantisation of an exported graph (:func:`export_onnx`) with ONNX
    Runtime, in its QDQ format: weights int8 per output channel, activations uint8 with ranges
    calibrated (min-max) on ``calibration``, (1, C, h, w) float32 inputs as the graph takes
    them (a few training photos; never the benchmark sets the change is then measured on).
    Returns the quantised graph's bytes. (Tried on SwiftRep x4 and left out: keeping the
    first and last convolutions in float, -0.148 dB instead of -0.150; percentile
    calibration, -0.130: neither reaches the 0.05 dB at which a graph is shipped.)"""
    import tempfile

    onnx = require("onnx", extra="onnx", purpose="int8 quantisation")
    require("onnxruntime", extra="onnx", purpose="int8 quantisation")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("quantize_int8 needs at least one calibration input")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"input": np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(prefix="superres-int8-") as folder:
        source, prepared, target = (Path(folder) / f"{n}.onnx" for n in ("source", "prepared", "int8"))
        source.write_bytes(onnx_model)
        try:
            quant_pre_process(str(source), str(prepared))  # shape inference and folding, as ORT advises
        except Exception:  # noqa: BLE001  (its symbolic shape inference gives up on some graphs, e.g. a nearest-upscaled anchor)
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # ONNX's own shape inference then
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(
                str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )
        graph = onnx.load(str(target))
    for prop in onnx.load_from_string(onnx_model).metadata_props:
        graph.metadata_props.add(key=prop.key, value=prop.value)
    graph.metadata_props.add(key="superres.quantization", value="int8 QDQ, per-channel weights, min-max calibrated activations")
    return graph.SerializeToString()


def max_abs_difference(model: nn.Module, onnx_model: bytes | str | os.PathLike, *, size: tuple[int, int] = _CHECK_SIZE, seed: int = 0) -> float:
    """The largest absolute difference between PyTorch's and ONNX Runtime's outputs on a random
    (2, C, *size) input in [0, 1] (inf if the shapes differ)."""
    model = prepare_for_inference(model).cpu()
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(2, model_contract(model).channels, *size, generator=generator)
    with torch.inference_mode():
        expected = model(x).float().numpy()
    try:
        got = OnnxRunner(onnx_model, threads=1)(x.numpy())
    except Exception:  # a graph that cannot run this size (ORT raises its own types) does not match
        return float("inf")
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got - expected)))


def _write(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise SuperresError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise SuperresError(f"cannot write '{path}': {exc.strerror or exc}") from None
