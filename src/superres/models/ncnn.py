"""ncnn model files (``NAME.param`` + ``NAME.bin``) read as foreign checkpoints, in plain Python.

ncnn (Tencent's inference runtime) is the format realesrgan-ncnn-vulkan, Upscayl and chaiNNer
keep their models in. A ``.param`` file is text: the magic number 7767517, the layer and blob
counts, then one line per layer, ``TYPE NAME N_IN N_OUT IN... OUT... K=V ...``, where a key
``-233NN=n,v1,...`` holds an array for parameter ``NN``. The ``.bin`` file is the layers'
weights, back to back in layer order; a convolution's kernel starts with a four-byte tag saying
how it is stored (fp16 ``0x01306B47``, fp32 ``0x0002C056`` or all zero, a 256-entry lookup
table otherwise, int8 ``0x000D4B38``), while biases and PReLU slopes are bare fp32. Kernels are
in PyTorch's own (out, in, kh, kw) order.

A graph is then recognised as one of the architectures superres builds, and its weights are
moved into our module, so an ncnn file gets tiling, batches, video, bf16 and re-saving as
safetensors like any checkpoint (no ncnn runtime is needed):

- RRDBNet (ESRGAN / Real-ESRGAN x4plus and its anime variant): convolutions, splits, concats,
  ``Eltwise`` sums weighted 0.2/1, a ``BinaryOp`` add for the long skip and nearest x2 ``Interp``
  stages, every convolution's fused activation (LeakyReLU 0.2 or none) where ours has it;
- SRVGGNetCompact (Real-ESRGAN's compact and anime-video models): convolution/PReLU pairs, a
  ``PixelShuffle`` and a nearest-upscaled input added.

Any other graph made only of layers superres knows (:data:`GRAPH_TYPES`: convolutions with
their fused activations, transposed convolutions, PReLU, ReLU, TanH, Sigmoid, Clip, BinaryOp,
Eltwise, Concat, Split, Interp, PixelShuffle, Crop, Padding) runs as it is written, one PyTorch
operation per layer (:class:`NcnnGraphModule`): SwiftRep, ESPCN and FSRCNN as ``superres
export --format ncnn`` writes them, for one. A layer of another type raises
:class:`CheckpointError` naming the first layer not understood.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.models.checkpoint import CheckpointError
from superres.models.foreign import Recognised, build_recognised

__all__ = ["NcnnLayer", "NcnnGraph", "NcnnGraphModule", "GRAPH_TYPES", "read_param", "read_ncnn", "recognise_ncnn", "load_ncnn", "ncnn_files", "MAGIC"]

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0x0002C056
TAG_INT8 = 0x000D4B38
ARRAY_KEY_BASE = -23300  # key -23300 - k holds an array for parameter k

# Layer types with no weights in the .bin file (the ones the recognised graphs use, and the
# plumbing every converter writes).
_WEIGHTLESS = {
    "Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Noop", "Clip",
    "TanH", "Sigmoid", "Crop", "Padding",
}


@dataclass(frozen=True)
class NcnnLayer:
    """One line of a ``.param`` file: its type, name, blobs in and out, and numbered parameters."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, int | float | tuple]
    line: int

    def get(self, key: int, default=0):
        return self.params.get(key, default)


@dataclass
class NcnnGraph:
    """A whole ncnn model: its layers in file order and each weighted layer's arrays."""

    layers: list[NcnnLayer]
    weights: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    source: str = "ncnn model"

    def of_type(self, kind: str) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.type == kind]


def ncnn_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` pair that ``path`` (either of them) names."""
    path = Path(path)
    if path.suffix.lower() not in (".param", ".bin"):
        raise CheckpointError(f"{str(path)!r} is not an ncnn model file (.param or .bin)")
    param, weights = path.with_suffix(".param"), path.with_suffix(".bin")
    for needed in (param, weights):
        if not needed.is_file():
            raise CheckpointError(f"cannot read ncnn model {str(path)!r}: {str(needed)!r} is missing (an ncnn model is a .param and a .bin)")
    return param, weights


def _value(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _parse_params(fields: list[str], where: str) -> dict[int, int | float | tuple]:
    params: dict[int, int | float | tuple] = {}
    for item in fields:
        key_text, sep, value_text = item.partition("=")
        try:
            key = int(key_text)
            if key <= ARRAY_KEY_BASE:
                count, *values = value_text.split(",")
                if int(count) != len(values):
                    raise ValueError(f"array of {count} holds {len(values)} values")
                params[ARRAY_KEY_BASE - key] = tuple(_value(v) for v in values)
            else:
                params[key] = _value(value_text)
        except ValueError as exc:
            raise CheckpointError(f"{where}: parameter {item!r} is not understood ({exc})") from None
        if not sep:
            raise CheckpointError(f"{where}: parameter {item!r} has no '='")
    return params


def read_param(path: str | os.PathLike) -> list[NcnnLayer]:
    """The layers of an ncnn ``.param`` file (the text form; the binary ``.param.bin`` is not read)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: not an ncnn .param text file ({exc.__class__.__name__})") from None
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() != str(MAGIC):
        raise CheckpointError(f"cannot read {str(path)!r}: not an ncnn .param file (first line is not {MAGIC})")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise CheckpointError(f"cannot read {str(path)!r}: line 2 should hold the layer and blob counts") from None
    layers = []
    for number, line in enumerate(lines[2:], start=3):
        where = f"{str(path)!r} line {number}"
        fields = line.split()
        try:
            kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        except (IndexError, ValueError):
            raise CheckpointError(f"{where}: not a layer line ('TYPE NAME N_IN N_OUT ...')") from None
        blobs = fields[4 : 4 + n_in + n_out]
        if len(blobs) != n_in + n_out:
            raise CheckpointError(f"{where}: layer {name!r} names fewer blobs than its counts say")
        params = _parse_params(fields[4 + n_in + n_out :], where)
        layers.append(NcnnLayer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params, number))
    if len(layers) != layer_count:
        raise CheckpointError(f"cannot read {str(path)!r}: it declares {layer_count} layers but holds {len(layers)}")
    return layers


class _Blobs:
    """Reads ncnn's weight arrays from the .bin file's bytes, in order."""

    def __init__(self, data: bytes, source: str):
        self.data, self.offset, self.source = data, 0, source

    def _take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise CheckpointError(f"cannot read {self.source!r}: the .bin file ends inside {what} (truncated, or not this .param's weights)")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def raw(self, count: int, what: str) -> np.ndarray:
        """``count`` bare fp32 values (biases, slopes)."""
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)

    def tagged(self, count: int, what: str) -> np.ndarray:
        """``count`` values behind a storage tag (a convolution's kernel)."""
        (tag,) = struct.unpack("<I", self._take(4, what))
        if tag == TAG_FP16:
            values = np.frombuffer(self._take(count * 2, what), dtype="<f2").astype(np.float32)
            self._take(-(count * 2) % 4, what)  # padded to 4 bytes
            return values
        if tag in (TAG_FP32, 0):
            return self.raw(count, what)
        if tag == TAG_INT8:
            raise CheckpointError(f"cannot read {self.source!r}: {what} is int8-quantised, which superres does not read (use the fp16 or fp32 file)")
        table = np.frombuffer(self._take(256 * 4, what), dtype="<f4")
        indices = np.frombuffer(self._take(count, what), dtype=np.uint8)
        self._take(-count % 4, what)
        return table[indices].astype(np.float32)


def _read_layer_weights(layer: NcnnLayer, blobs: _Blobs) -> dict[str, np.ndarray]:
    what = f"layer {layer.name!r} ({layer.type})"
    if layer.type in ("Convolution", "Deconvolution"):
        if layer.type == "Convolution" and layer.get(8):
            raise CheckpointError(f"cannot read {blobs.source!r}: {what} is an int8 convolution, which superres does not read")
        out_channels, size = int(layer.get(0)), int(layer.get(6))
        kernel_w = int(layer.get(1))
        kernel_h = int(layer.get(11, kernel_w))
        weight = blobs.tagged(size, what)
        if size % (out_channels * kernel_h * kernel_w):
            raise CheckpointError(f"cannot read {blobs.source!r}: {what} has {size} weights, not a multiple of {out_channels}x{kernel_h}x{kernel_w}")
        # (out, in, kh, kw): PyTorch's order for a convolution; a deconvolution's as ncnn keeps it.
        arrays = {"weight": weight.reshape(out_channels, -1, kernel_h, kernel_w)}
        if layer.get(5):
            arrays["bias"] = blobs.raw(out_channels, what)
        return arrays
    if layer.type == "PReLU":
        return {"weight": blobs.raw(int(layer.get(0)), what)}
    if layer.type in _WEIGHTLESS:
        return {}
    raise CheckpointError(f"cannot read {blobs.source!r}: layer {layer.name!r} (line {layer.line}) is of type {layer.type}, which superres does not understand")


def read_ncnn(path: str | os.PathLike) -> NcnnGraph:
    """An ncnn model's layers and weights, from its ``.param`` (or ``.bin``) path."""
    param, weights = ncnn_files(path)
    layers = read_param(param)
    blobs = _Blobs(weights.read_bytes(), str(weights))
    graph = NcnnGraph(layers, source=str(param))
    for layer in layers:
        arrays = _read_layer_weights(layer, blobs)
        if arrays:
            graph.weights[layer.name] = arrays
    if blobs.offset != len(blobs.data):
        raise CheckpointError(f"cannot read {str(weights)!r}: {len(blobs.data) - blobs.offset} bytes left after the last layer (not this .param's weights)")
    return graph


# --------------------------------------------------------------------------------------
# Recognising a graph as one of our architectures


def _first_outside(graph: NcnnGraph, allowed: set[str]) -> NcnnLayer | None:
    return next((layer for layer in graph.layers if layer.type not in allowed), None)


def _leaky(layer: NcnnLayer) -> float | None:
    """The LeakyReLU slope a convolution applies to its output (ncnn's activation 2), or None."""
    kind = layer.get(9)
    if kind == 0:
        return None
    if kind == 1:
        return 0.0
    if kind == 2:
        return float(layer.get(10, (0.0,))[0])
    raise CheckpointError(f"layer {layer.name!r} (line {layer.line}) has activation type {kind}, which superres does not understand")


def _check(condition: bool, layer: NcnnLayer, what: str) -> None:
    if not condition:
        raise CheckpointError(f"layer {layer.name!r} (line {layer.line}, {layer.type}) is not understood: {what}")


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _read_rrdbnet(graph: NcnnGraph) -> Recognised:
    convs = graph.of_type("Convolution")
    interps = graph.of_type("Interp")
    for layer in interps:
        _check(layer.get(0) == 1 and float(layer.get(1)) == 2.0 == float(layer.get(2)), layer, "RRDBNet upsamples by nearest x2")
    up = len(interps)
    features, growth = int(convs[0].get(0)), int(convs[1].get(0))
    channels = graph.weights[convs[0].name]["weight"].shape[1]
    blocks, rest = divmod(len(convs) - 4 - up, 15)
    _check(rest == 0 and blocks > 0, convs[-1], f"{len(convs)} convolutions do not make RRDB blocks of 15")
    _check(channels == 3, convs[0], "an RRDBNet with a pixel-unshuffled input (x1, x2) is not read from ncnn yet")
    for layer in graph.of_type("Eltwise"):
        _check(layer.get(0) == 1 and tuple(layer.get(1, ())) == (0.2, 1.0), layer, "RRDB residuals are a sum weighted 0.2 and 1")
    _check(len(graph.of_type("Eltwise")) == 4 * blocks, convs[-1], "RRDBNet has four weighted sums per block")
    # Which convolutions carry LeakyReLU 0.2: conv1-4 of every dense block, the upsampling
    # stages and the HR conv; none elsewhere.
    leaky = [False] + [i % 5 != 4 for i in range(15 * blocks)] + [False] + [True] * up + [True, False]
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body"] + [f"conv_up.{i}" for i in range(up)] + ["conv_hr", "conv_last"]
    state = {}
    for layer, name, activated in zip(convs, names, leaky, strict=True):
        slope = _leaky(layer)
        _check((slope is not None and abs(slope - 0.2) < 1e-6) if activated else slope is None, layer, f"{name} should {'' if activated else 'not '}apply LeakyReLU 0.2")
        for key, array in graph.weights[layer.name].items():
            state[f"{name}.{key}"] = _tensor(array)
    hyperparameters = {"channels": 3, "features": features, "blocks": blocks, "growth": growth}
    return Recognised("ncnn RRDBNet", "rrdbnet", 2**up, hyperparameters, state)


def _read_srvggnet(graph: NcnnGraph) -> Recognised:
    weighted = [layer for layer in graph.layers if layer.type in ("Convolution", "PReLU")]
    kinds = [layer.type for layer in weighted]
    expected = ["Convolution", "PReLU"] * ((len(kinds) - 1) // 2) + ["Convolution"]
    _check(kinds == expected, weighted[-1], "SRVGGNetCompact alternates convolutions and PReLUs and ends with a convolution")
    shuffles = graph.of_type("PixelShuffle")
    _check(len(shuffles) == 1, shuffles[-1] if shuffles else weighted[-1], "SRVGGNetCompact has one pixel shuffle")
    scale = int(shuffles[0].get(0))
    interps = graph.of_type("Interp")
    anchor = next((layer for layer in interps if layer.get(0) == 1 and float(layer.get(1)) == scale == float(layer.get(2))), None)
    _check(anchor is not None, interps[0] if interps else shuffles[0], f"SRVGGNetCompact adds the input upscaled x{scale} by nearest")
    for layer in interps:
        _check(
            layer is anchor,
            layer,
            f"after the x{scale} network the file resizes by {float(layer.get(1)):g} ({'bicubic' if layer.get(0) == 3 else 'interpolation'}); "
            f"load the file's x{scale} counterpart and ask superres for the smaller size (-s)",
        )
    for layer in weighted:
        if layer.type == "Convolution":
            _check(_leaky(layer) is None, layer, "SRVGGNetCompact's convolutions have no fused activation")
    state = {}
    for index, layer in enumerate(weighted):
        for key, array in graph.weights[layer.name].items():
            state[f"body.{index}.{key}"] = _tensor(array)
    features, channels = state["body.0.weight"].shape[:2]
    hyperparameters = {"channels": channels, "features": features, "convs": len(weighted) // 2 - 1}
    return Recognised("ncnn SRVGGNetCompact", "srvggnet-compact", scale, hyperparameters, state)


_RRDB_TYPES = {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}
_SRVGG_TYPES = {"Input", "Convolution", "PReLU", "Split", "PixelShuffle", "Interp", "BinaryOp"}


def recognise_ncnn(graph: NcnnGraph) -> Recognised:
    """The architecture, scale, hyperparameters and state dict (our key names) of an ncnn graph."""
    counts = Counter(layer.type for layer in graph.layers)
    try:
        if counts["PReLU"] and _first_outside(graph, _SRVGG_TYPES) is None:
            return _read_srvggnet(graph)
        if counts["Concat"] and counts["Eltwise"] and _first_outside(graph, _RRDB_TYPES) is None:
            return _read_rrdbnet(graph)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot load {graph.source!r}: {exc}") from None
    first = _first_outside(graph, _RRDB_TYPES if not counts["PReLU"] else _SRVGG_TYPES) or graph.layers[-1]
    raise CheckpointError(
        f"cannot load {graph.source!r}: not an architecture superres builds (RRDBNet, SRVGGNetCompact); "
        f"first layer not understood: {first.name!r} (line {first.line}, {first.type})"
    )


# --------------------------------------------------------------------------------------
# Any other graph of known layers, run layer by layer


def _activation(x: torch.Tensor, kind: int, params: tuple, layer: NcnnLayer) -> torch.Tensor:
    """ncnn's fused activation ``kind`` (a convolution's key 9, its parameters key 10)."""
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, float(params[0]))
    if kind == 3:
        return x.clamp(float(params[0]), float(params[1]))
    if kind == 4:
        return torch.sigmoid(x)
    if kind == 5:
        return F.mish(x)
    if kind == 6:
        alpha, beta = (float(v) for v in (params or (0.2, 0.5)))
        return x * (x * alpha + beta).clamp(0.0, 1.0)
    raise CheckpointError(f"layer {layer.name!r} (line {layer.line}) has activation type {kind}, which superres does not understand")


def _pads(layer: NcnnLayer) -> tuple[int, int, int, int]:
    """(left, right, top, bottom), with ncnn's defaults: right = left, top = left, bottom = top."""
    left = int(layer.get(4, 0))
    right = int(layer.get(15, left))
    top = int(layer.get(14, left))
    return left, right, top, int(layer.get(16, top))


_BINARY = {
    0: torch.add, 1: torch.sub, 2: torch.mul, 3: torch.div, 4: torch.maximum, 5: torch.minimum, 6: torch.pow,
    7: lambda a, b: b - a, 8: lambda a, b: b / a,
}
_INTERP_MODES = {1: "nearest", 2: "bilinear", 3: "bicubic"}

#: The layer types :class:`NcnnGraphModule` runs.
GRAPH_TYPES = frozenset({
    "Input", "Convolution", "Deconvolution", "PReLU", "ReLU", "TanH", "Sigmoid", "Clip", "BinaryOp", "Eltwise",
    "Concat", "Split", "Interp", "PixelShuffle", "Crop", "Padding", "Noop",
})


class NcnnGraphModule(nn.Module):
    """An ncnn graph that is none of the architectures superres builds, run as it is written:
    each layer in file order as the PyTorch operation that computes what ncnn's does (the
    file's weights as parameters, so devices, bf16 and batches work as for any model).

    Takes and gives (B, C, H, W); ``scale`` is measured by running a 16x16 input.
    """

    def __init__(self, graph: NcnnGraph):
        super().__init__()
        unknown = next((layer for layer in graph.layers if layer.type not in GRAPH_TYPES), None)
        if unknown is not None:
            raise CheckpointError(
                f"cannot load {graph.source!r}: first layer not understood: {unknown.name!r} (line {unknown.line}, {unknown.type})"
            )
        for layer in graph.layers:
            self._check(layer)
        self.layers = list(graph.layers)
        self.source = graph.source
        self.weights = nn.ParameterDict()
        for index, layer in enumerate(self.layers):
            for key, array in graph.weights.get(layer.name, {}).items():
                self.weights[f"{index}_{key}"] = nn.Parameter(_tensor(array), requires_grad=False)
        inputs = [layer for layer in self.layers if layer.type == "Input"]
        if len(inputs) != 1:
            raise CheckpointError(f"cannot load {graph.source!r}: it has {len(inputs)} Input layers, not one")
        produced = [blob for layer in self.layers for blob in layer.outputs]
        self.output_blob = "output" if "output" in produced else produced[-1]
        first = next(layer for layer in self.layers if layer.type in ("Convolution", "Deconvolution"))
        weight = graph.weights[first.name]["weight"]
        self.channels = int(weight.shape[1])  # (out, in, kh, kw) for both kinds
        from superres.models.contract import Contract

        self.contract = Contract(channels=self.channels)
        self.scale = self._measure_scale()

    def _check(self, layer: NcnnLayer) -> None:
        """Refuse, at load time, what forward would not compute as ncnn does."""
        if layer.type in ("Convolution", "Deconvolution"):
            if layer.get(4, 0) < 0 or layer.get(19 if layer.type == "Convolution" else 28, 0):
                _check(False, layer, "automatic ('same') padding or dynamic weights are not read")
            if layer.type == "Deconvolution" and (layer.get(20, 0) or layer.get(21, 0)):
                _check(False, layer, "an output size given in the file is not read")
        if layer.type == "Interp":
            _check(layer.get(0) in _INTERP_MODES, layer, f"resize type {layer.get(0)} is not read")
            _check(not layer.get(5, 0) and len(layer.inputs) == 1, layer, "a resize to another blob's size is not read")
        if layer.type == "PixelShuffle":
            _check(layer.get(1, 0) == 0, layer, "only PyTorch's channel order (mode 0) is read")
        if layer.type == "Concat":
            _check(int(layer.get(0, 0)) in (0, -3), layer, "only a concatenation of channels is read")
        if layer.type == "Crop":
            _check(not any(k in layer.params for k in (2, 5, 8, 9, 10, 11)), layer, "only a crop of width and height by offsets is read")
        if layer.type == "Padding":
            _check(layer.get(4, 0) in (0, 1, 2) and not layer.get(6, 0) and not layer.get(7, 0) and not layer.get(8, 0), layer, "only constant, edge and reflect padding of width and height is read")
        if layer.type == "Eltwise":
            _check(layer.get(0, 1) in (0, 1, 2), layer, f"operation {layer.get(0)} is not read")
        if layer.type == "BinaryOp":
            _check(layer.get(0, 0) in _BINARY, layer, f"operation {layer.get(0)} is not read")
        if layer.type == "Convolution":
            _check(not layer.get(8, 0), layer, "int8 convolutions are not read")

    def _measure_scale(self) -> int:
        probe = 16
        with torch.inference_mode():
            out = self(torch.zeros(1, self.channels, probe, probe))
        height, width = out.shape[-2:]
        if height != width or height % probe:
            raise CheckpointError(f"cannot load {self.source!r}: a {probe}x{probe} input gives {height}x{width}, not a whole-number upscale")
        return height // probe

    def _weight(self, index: int, key: str) -> torch.Tensor | None:
        name = f"{index}_{key}"
        return self.weights[name] if name in self.weights else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            inputs = [blobs[blob] for blob in layer.inputs]
            outputs = self._run(index, layer, inputs, x)
            for blob, value in zip(layer.outputs, outputs):
                blobs[blob] = value
        return blobs[self.output_blob]

    def _run(self, index: int, layer: NcnnLayer, inputs: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        kind, get = layer.type, layer.get
        if kind == "Input":
            return [x]
        if kind == "Split":
            return [inputs[0]] * len(layer.outputs)
        if kind == "Noop":
            return inputs
        (a, *rest) = inputs
        if kind == "Convolution":
            left, right, top, bottom = _pads(layer)
            weight, bias = self._weight(index, "weight"), self._weight(index, "bias")
            a = F.pad(a, (left, right, top, bottom), value=float(get(18, 0.0)))
            dilation = (int(get(12, get(2, 1))), int(get(2, 1)))
            stride = (int(get(13, get(3, 1))), int(get(3, 1)))
            y = F.conv2d(a, weight.to(a.dtype), None if bias is None else bias.to(a.dtype), stride=stride, dilation=dilation)
            return [_activation(y, int(get(9, 0)), tuple(get(10, ())), layer)]
        if kind == "Deconvolution":
            left, right, top, bottom = _pads(layer)
            weight, bias = self._weight(index, "weight"), self._weight(index, "bias")
            dilation = (int(get(12, get(2, 1))), int(get(2, 1)))
            stride = (int(get(13, get(3, 1))), int(get(3, 1)))
            # ncnn: the full transposed convolution, output_pad more rows and columns of bias
            # alone at the bottom and right, the activation, then the pads cut off.
            y = F.conv_transpose2d(a, weight.transpose(0, 1).to(a.dtype), None, stride=stride, dilation=dilation)
            y = F.pad(y, (0, int(get(18, 0)), 0, int(get(19, 0))))
            if bias is not None:
                y = y + bias.to(a.dtype).view(1, -1, 1, 1)
            y = _activation(y, int(get(9, 0)), tuple(get(10, ())), layer)
            return [y[..., top : y.shape[-2] - bottom, left : y.shape[-1] - right]]
        if kind == "PReLU":
            return [F.prelu(a, self._weight(index, "weight").to(a.dtype))]
        if kind == "ReLU":
            slope = float(get(0, 0.0))
            return [F.relu(a) if slope == 0 else F.leaky_relu(a, slope)]
        if kind == "TanH":
            return [torch.tanh(a)]
        if kind == "Sigmoid":
            return [torch.sigmoid(a)]
        if kind == "Clip":
            return [a.clamp(float(get(0, -3.4e38)), float(get(1, 3.4e38)))]
        if kind == "BinaryOp":
            op = _BINARY[int(get(0, 0))]
            return [op(a, float(get(2, 0.0))) if get(1, 0) else op(a, rest[0])]
        if kind == "Eltwise":
            coefficients = tuple(get(1, ()))
            terms = [t * float(c) for t, c in zip(inputs, coefficients)] if coefficients and get(0, 1) == 1 else inputs
            combine = {0: torch.mul, 1: torch.add, 2: torch.maximum}[int(get(0, 1))]
            out = terms[0]
            for term in terms[1:]:
                out = combine(out, term)
            return [out]
        if kind == "Concat":
            return [torch.cat(inputs, dim=1)]
        if kind == "PixelShuffle":
            return [F.pixel_shuffle(a, int(get(0, 1)))]
        if kind == "Interp":
            height, width = a.shape[-2:]
            out_h, out_w = int(get(3, 0)), int(get(4, 0))
            if not (out_h and out_w):
                out_h, out_w = int(height * float(get(1, 1.0))), int(width * float(get(2, 1.0)))
            mode = _INTERP_MODES[int(get(0))]
            corners = None if mode == "nearest" else bool(get(6, 0))
            return [F.interpolate(a, size=(out_h, out_w), mode=mode, align_corners=corners)]
        if kind == "Crop":
            height, width = a.shape[-2:]
            left, top = int(get(0, 0)), int(get(1, 0))
            out_w = int(get(3, 0)) or width - left - int(get(6, 0))
            out_h = int(get(4, 0)) or height - top - int(get(7, 0))
            return [a[..., top : top + out_h, left : left + out_w]]
        if kind == "Padding":
            mode = {0: "constant", 1: "replicate", 2: "reflect"}[int(get(4, 0))]
            pads = (int(get(2, 0)), int(get(3, 0)), int(get(0, 0)), int(get(1, 0)))
            return [F.pad(a, pads, mode=mode, value=float(get(5, 0.0))) if mode == "constant" else F.pad(a, pads, mode=mode)]
        raise CheckpointError(f"layer {layer.name!r} (line {layer.line}, {kind}) is not understood")  # GRAPH_TYPES and this agree


def load_ncnn(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load an ncnn model (``.param`` or ``.bin`` path; the other must sit beside it) into our
    implementation of its architecture, like :func:`superres.models.foreign.load_foreign`; a
    graph that is none of them but is made of layers superres knows (:data:`GRAPH_TYPES`,
    what ``superres export --format ncnn`` writes among them) runs as it is written
    (:class:`NcnnGraphModule`). Its ``superres_arch`` is then ``"ncnn-graph"``: it cannot be
    re-saved as safetensors, which rebuild a registered architecture."""
    graph = read_ncnn(path)
    try:
        found = recognise_ncnn(graph)
    except CheckpointError as not_recognised:
        if any(layer.type not in GRAPH_TYPES for layer in graph.layers):
            raise not_recognised from None
        model = NcnnGraphModule(graph)
        model.superres_arch = "ncnn-graph"
        model.superres_hyperparameters = {}
        model.superres_metadata = {"arch": "ncnn-graph", "scale": model.scale, "source": "ncnn graph, run layer by layer"}
        return model.to(map_location).eval()
    model = build_recognised(found, graph.source)
    return model.to(map_location).eval()


class NcnnRuntime:
    """An ncnn model run by the ``ncnn`` package itself (Tencent's runtime, on the CPU): the
    reference our reader is checked against, and the fastest CPU path for Real-ESRGAN's
    models. Takes and returns (C, H, W) float32 RGB in [0, 1], as the Real-ESRGAN files expect."""

    def __init__(self, path: str | os.PathLike, *, threads: int = 1, input_blob: str = "data", output_blob: str = "output"):
        from superres.extras import require

        ncnn = require("ncnn", extra="ncnn", purpose="the ncnn runtime")
        param, weights = ncnn_files(path)
        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        if self.net.load_param(str(param)) or self.net.load_model(str(weights)):
            raise CheckpointError(f"the ncnn runtime could not load {str(param)!r}")
        self.input_blob, self.output_blob = input_blob, output_blob

    def __call__(self, image: np.ndarray) -> np.ndarray:
        extractor = self.net.create_extractor()
        # ncnn reads the array's memory as it lies: hand it a C-ordered copy, cloned into a Mat
        # the runtime owns.
        extractor.input(self.input_blob, self._ncnn.Mat(np.ascontiguousarray(image, dtype=np.float32)).clone())
        status, out = extractor.extract(self.output_blob)
        if status:
            raise CheckpointError(f"the ncnn runtime failed on blob {self.output_blob!r} (status {status})")
        return np.array(out)
