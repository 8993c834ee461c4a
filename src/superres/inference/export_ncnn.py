"""ncnn export: a model as ``NAME-xS.param`` and ``NAME-xS.bin``, the files realesrgan-ncnn-vulkan,
Upscayl and chaiNNer run on any Vulkan GPU.

The files follow the Real-ESRGAN ncnn releases: input blob ``data``, output blob ``output``,
(3, H, W) RGB in [0, 1] in and (3, sH, sW) out, every convolution kernel stored as fp16 (tag
:data:`~superres.models.ncnn.TAG_FP16`) and biases and PReLU slopes as fp32, as ncnn reads them.
The writer walks the model in its inference form (SwiftRep fused, :func:`prepare_for_inference`)
with ``torch.fx`` and writes one ncnn layer per operation it knows (convolution, transposed
convolution, PReLU, ReLU/LeakyReLU, tanh, sigmoid, pixel shuffle, nearest upsampling, padding,
concatenation, element-wise arithmetic); any other operation refuses the model, naming it.
SwiftRep's anchor (the input repeated ``s*s`` times across channels, added before the pixel
shuffle) is written as Real-ESRGAN's compact model writes its own: a nearest x``s`` ``Interp``
of the input added after the ``PixelShuffle``, which is the same sum.

A luma model (FSRCNN, ESPCN: Y in, Y out) is wrapped by :class:`LumaAsRgb` so that the file
takes and gives RGB like every other: 1x1 convolutions for RGB -> Y and for the join of Y and
chroma, the chroma upscaled by MATLAB's bicubic kernel written as a convolution giving each
sub-pixel phase after an edge-replicating ``Padding``, and one pixel shuffle for Y and chroma
together at the end. That is what the upscaler
does (:mod:`superres.inference.channels`) except within two pixels of the border, where
MATLAB mirrors the image and ncnn can only replicate its edge (docs/APPS.md gives the
measured difference).
"""

from __future__ import annotations

import operator
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from superres.atomic import write_atomic
from superres.errors import SuperresError
from superres.imaging.color import CHROMA_FROM_RGB, RGB_PER_LUMA, YCBCR_FROM_RGB, YCBCR_OFFSET
from superres.imaging.resize import resize_weights
from superres.inference.onnx import prepare_for_inference
from superres.models.contract import model_contract
from superres.models.ncnn import ARRAY_KEY_BASE, MAGIC, TAG_FP16

__all__ = ["INPUT_BLOB", "OUTPUT_BLOB", "LumaAsRgb", "export_ncnn", "ncnn_file_names", "ncnn_model_bytes"]

INPUT_BLOB = "data"
OUTPUT_BLOB = "output"

_PAD = 2  # bicubic taps reach two input pixels either side of a phase


def ncnn_file_names(name: str, scale: int) -> tuple[str, str]:
    """The ``.param`` and ``.bin`` names of ``name`` at ``scale``: ``NAME-xS.param``. Upscayl
    reads the scale from the ``xS`` in the name, realesrgan-ncnn-vulkan takes ``-n NAME-xS``."""
    stem = f"{name}-x{scale}"
    return f"{stem}.param", f"{stem}.bin"


class LumaAsRgb(nn.Module):
    """A luma model (Y / 255 in and out, :mod:`superres.models.contract`) as an RGB one, built
    only of operations ncnn has, with a single upscaling layer at the end, as the Real-ESRGAN
    files have (chaiNNer infers a file's scale by multiplying its PixelShuffle factors, and its
    output channels from the last convolution).

    At low resolution: Y from RGB (a 1x1 convolution), the network's Y as ``s*s`` sub-pixel
    phases (ESPCN's last convolution; FSRCNN's transposed convolution rewritten as the
    equivalent convolution), the chroma's MATLAB-bicubic phases (one 5x5 convolution after
    replicating the edge two pixels out), and the join of Y and chroma into RGB for every
    phase (a 1x1 convolution); then one pixel shuffle."""

    def __init__(self, net: nn.Module, *, scale: int):
        super().__init__()
        self.scale = scale
        self.to_y = nn.Conv2d(3, 1, 1)
        self.luma = _luma_phases(net, scale)
        self.to_chroma = nn.Conv2d(3, 3, 1)
        self.pad = nn.ReplicationPad2d(_PAD)
        self.phases = nn.Conv2d(3, 3 * scale * scale, 2 * _PAD + 1, bias=False)
        self.join = nn.Conv2d(4 * scale * scale, 3 * scale * scale, 1, bias=False)
        self.shuffle = nn.PixelShuffle(scale)
        with torch.no_grad():
            self.to_y.weight.copy_(torch.tensor(YCBCR_FROM_RGB[0] / 255.0).view(1, 3, 1, 1))
            self.to_y.bias.fill_(YCBCR_OFFSET[0] / 255.0)
            self.to_chroma.weight.copy_(torch.tensor(CHROMA_FROM_RGB).view(3, 3, 1, 1))
            self.to_chroma.bias.copy_(torch.tensor(-YCBCR_OFFSET[0] * RGB_PER_LUMA))
            self.phases.weight.copy_(_bicubic_phases(scale))
            # RGB = chroma part + Y (0-255 scale) * RGB_PER_LUMA, the model's Y being Y / 255;
            # phase by phase: input channels are Y's s*s phases then each chroma plane's.
            phases = scale * scale
            join = torch.zeros(3 * phases, 4 * phases)
            for c in range(3):
                for ph in range(phases):
                    join[c * phases + ph, ph] = 255.0 * float(RGB_PER_LUMA[c])
                    join[c * phases + ph, phases + c * phases + ph] = 1.0
            self.join.weight.copy_(join.view(3 * phases, 4 * phases, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.luma(self.to_y(x))  # (B, s*s, H, W): Y / 255, phase by phase
        chroma = self.phases(self.pad(self.to_chroma(x)))  # (B, 3*s*s, H, W)
        rgb = self.join(torch.cat([y, chroma], dim=1))  # (B, 3*s*s, H, W)
        return self.shuffle(rgb)  # (B, 3, sH, sW)


def _luma_phases(net: nn.Module, scale: int) -> nn.Module:
    """The part of a luma model that maps Y to its output's ``s*s`` sub-pixel phases at low
    resolution: everything before ESPCN's pixel shuffle; FSRCNN with its last layer as a
    convolution."""
    from superres.models.espcn import ESPCN
    from superres.models.fsrcnn import FSRCNN

    if isinstance(net, ESPCN):
        return net.body
    if isinstance(net, FSRCNN):
        return nn.Sequential(*net.body, _deconv_as_phases(net.deconv, scale))
    raise SuperresError(f"the ncnn writer wraps ESPCN and FSRCNN for RGB, not {type(net).__name__} (a luma model)")


def _deconv_as_phases(deconv: nn.ConvTranspose2d, scale: int) -> nn.Conv2d:
    """A one-channel transposed convolution of stride ``scale`` that makes the output exactly
    ``scale`` x its input, as the convolution giving its ``s*s`` output phases at the input's
    resolution (the same sums: output pixel ``i*s + p`` is ``sum_j x[i - j] * w[j*s + p + pad]``)."""
    (k, _), (stride, _), (pad, _) = (_pair(v) for v in (deconv.kernel_size, deconv.stride, deconv.padding))
    if deconv.out_channels != 1 or stride != scale or deconv.groups != 1 or _pair(deconv.dilation) != (1, 1):
        raise SuperresError(f"cannot write a transposed convolution of stride {stride} as x{scale} sub-pixel phases")
    offsets = [j for p in range(scale) for j in range(-k, k + 1) if 0 <= j * scale + p + pad < k]
    reach = max(abs(j) for j in offsets)
    size = 2 * reach + 1
    conv = nn.Conv2d(deconv.in_channels, scale * scale, size, padding=reach)
    weight = torch.zeros(scale * scale, deconv.in_channels, size, size)
    w = deconv.weight.detach()[:, 0]  # (in, k, k)
    for py in range(scale):
        for px in range(scale):
            for jy in range(-reach, reach + 1):
                for jx in range(-reach, reach + 1):
                    ky, kx = jy * scale + py + pad, jx * scale + px + pad
                    if 0 <= ky < k and 0 <= kx < k:
                        # A cross-correlation reads x[i + t - reach]; x[i - j] is tap reach - j.
                        weight[py * scale + px, :, reach - jy, reach - jx] = w[:, ky, kx]
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.fill_(float(deconv.bias.detach()[0]) if deconv.bias is not None else 0.0)
    return conv


def _bicubic_phases(scale: int) -> torch.Tensor:
    """(3 * s * s, 3, 5, 5): output channel ``c*s*s + py*s + px`` is the bicubic sample of
    channel ``c`` at sub-pixel ``(py, px)``, in PixelShuffle's channel order."""
    # The taps of an interior output pixel of MATLAB's imresize along one axis: the same
    # numbers the upscaler uses, so that only the border (mirror vs replicate) differs.
    length, centre = 16, 8
    matrix = resize_weights(length, length * scale, float(scale), False)
    taps = [matrix[centre * scale + p, centre - _PAD : centre + _PAD + 1] for p in range(scale)]
    weight = torch.zeros(3 * scale * scale, 3, 2 * _PAD + 1, 2 * _PAD + 1, dtype=torch.float64)
    for c in range(3):
        for py in range(scale):
            for px in range(scale):
                weight[c * scale * scale + py * scale + px, c] = torch.outer(torch.tensor(taps[py]), torch.tensor(taps[px]))
    return weight.float()


# --------------------------------------------------------------------------------------
# The writer: layers and their weights, then the two files' bytes


@dataclass
class _Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, int | float | tuple] = field(default_factory=dict)
    weights: bytes = b""


def _fp16_blob(tensor: torch.Tensor) -> bytes:
    """A kernel as ncnn's loader reads a tagged array: the fp16 tag, the values, padded to 4 bytes."""
    values = tensor.detach().cpu().float().numpy().astype("<f2").tobytes()
    return struct.pack("<I", TAG_FP16) + values + b"\0" * (-len(values) % 4)


def _fp32_blob(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().float().numpy().astype("<f4").tobytes()


def _format_value(value) -> str:
    return f"{value:e}" if isinstance(value, float) else str(int(value))


def _format_params(params: dict) -> str:
    fields = []
    for key, value in sorted(params.items()):
        if isinstance(value, tuple):
            fields.append(f"{ARRAY_KEY_BASE - key}={len(value)}," + ",".join(_format_value(v) for v in value))
        else:
            fields.append(f"{key}={_format_value(value)}")
    return " ".join(fields)


class _Graph:
    def __init__(self):
        self.layers: list[_Layer] = [_Layer("Input", "input", [], [INPUT_BLOB])]

    def add(self, kind: str, name: str, inputs: list[str], params: dict | None = None, weights: bytes = b"") -> str:
        blob = name
        self.layers.append(_Layer(kind, name, list(inputs), [blob], dict(params or {}), weights))
        return blob

    def files(self, output: str) -> tuple[str, bytes]:
        """The .param text and the .bin bytes, ``output`` renamed to :data:`OUTPUT_BLOB` and a
        ``Split`` after every blob read by more than one layer (ncnn gives a blob one reader)."""
        for layer in self.layers:
            layer.inputs = [OUTPUT_BLOB if b == output else b for b in layer.inputs]
            layer.outputs = [OUTPUT_BLOB if b == output else b for b in layer.outputs]
        readers: dict[str, list[_Layer]] = {}
        for layer in self.layers:
            for blob in layer.inputs:
                readers.setdefault(blob, []).append(layer)
        layers = []
        for layer in self.layers:
            layers.append(layer)
            for blob in layer.outputs:
                users = readers.get(blob, [])
                if len(users) < 2:
                    continue
                copies = [f"{blob}_splitncnn_{i}" for i in range(len(users))]
                layers.append(_Layer("Split", f"splitncnn_{blob}", [blob], copies))
                for user, copy in zip(users, copies):
                    # A layer reading the blob twice (x + x) takes two of the copies.
                    user.inputs[user.inputs.index(blob)] = copy
        blobs = {b for layer in layers for b in layer.outputs}
        lines = [str(MAGIC), f"{len(layers)} {len(blobs)}"]
        for layer in layers:
            head = f"{layer.type:<24} {layer.name:<24} {len(layer.inputs)} {len(layer.outputs)} {' '.join(layer.inputs + layer.outputs)}"
            params = _format_params(layer.params)
            lines.append(f"{head} {params}".rstrip())
        return "\n".join(lines) + "\n", b"".join(layer.weights for layer in layers)


# --------------------------------------------------------------------------------------
# Walking the traced model


class _Refused(Exception):
    """An operation the writer has no ncnn layer for (the message says which)."""


@dataclass
class _Anchor:
    """``x.repeat_interleave(r, dim=1)`` not yet written: it becomes a nearest Interp when a
    pixel shuffle follows the sum it feeds, a 1x1 convolution of ones otherwise."""

    source: object
    repeats: int


@dataclass
class _AnchoredSum:
    """``a + anchor`` not yet written, waiting for the pixel shuffle that may follow it."""

    value: object
    anchor: _Anchor


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class _Walker:
    def __init__(self, traced: torch.fx.GraphModule):
        self.module = traced
        self.graph = _Graph()
        self.env: dict[torch.fx.Node, object] = {}
        self.names: set[str] = set()

    def name(self, node: torch.fx.Node) -> str:
        base = "".join(c if c.isalnum() or c in "_-" else "_" for c in node.name)[:60] or "layer"
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def channels(self, node) -> int:
        meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
        if meta is None:
            raise _Refused(f"the channel count of {node} is unknown")
        return int(meta.shape[1])

    def blob(self, value) -> str:
        """The blob holding ``value`` (a node's result), writing any layer it still waits for."""
        if isinstance(value, torch.fx.Node):
            value = self.env[value]
        if isinstance(value, str):
            return value
        if isinstance(value, _Anchor):
            return self._repeat_as_conv(value)
        if isinstance(value, _AnchoredSum):
            return self.graph.add("BinaryOp", f"anchor_add_{len(self.graph.layers)}", [self.blob(value.value), self.blob(value.anchor)], {0: 0})
        raise _Refused(f"a value of type {type(value).__name__} is not a tensor")

    def _repeat_as_conv(self, anchor: _Anchor) -> str:
        source = anchor.source
        channels = self.channels(source)
        weight = torch.zeros(channels * anchor.repeats, channels, 1, 1)
        for c in range(channels):
            weight[c * anchor.repeats : (c + 1) * anchor.repeats, c] = 1.0
        params = {0: channels * anchor.repeats, 1: 1, 6: weight.numel()}
        return self.graph.add("Convolution", f"repeat_{len(self.graph.layers)}", [self.blob(source)], params, _fp16_blob(weight))

    def run(self) -> str:
        output = None
        for node in self.module.graph.nodes:
            if node.op == "placeholder":
                if self.env:
                    raise _Refused(f"a second input ({node.name})")
                self.env[node] = INPUT_BLOB
            elif node.op == "call_module":
                self.env[node] = self.module_layer(node, self.module.get_submodule(node.target))
            elif node.op in ("call_function", "call_method"):
                self.env[node] = self.function_layer(node)
            elif node.op == "output":
                result = node.args[0]
                if not isinstance(result, torch.fx.Node):
                    raise _Refused("the model returns more than one tensor")
                output = self.blob(result)
            else:
                raise _Refused(f"{node.op} {node.target} (a tensor kept on the model)")
        if output is None or output == INPUT_BLOB:
            raise _Refused("the model computes nothing")
        return output

    # ---------------------------------------------------------------- modules

    def module_layer(self, node, module: nn.Module):
        name = self.name(node)
        (source,) = node.args
        if isinstance(module, (nn.Identity, nn.Dropout)):
            return self.env[source]
        x = self.blob(source)
        if isinstance(module, nn.Conv2d):
            return self.graph.add("Convolution", name, [x], *self.conv_params(module))
        if isinstance(module, nn.ConvTranspose2d):
            return self.graph.add("Deconvolution", name, [x], *self.deconv_params(module))
        if isinstance(module, nn.PReLU):
            return self.graph.add("PReLU", name, [x], {0: module.weight.numel()}, _fp32_blob(module.weight))
        if isinstance(module, nn.ReLU):
            return self.graph.add("ReLU", name, [x])
        if isinstance(module, nn.LeakyReLU):
            return self.graph.add("ReLU", name, [x], {0: float(module.negative_slope)})
        if isinstance(module, nn.Tanh):
            return self.graph.add("TanH", name, [x])
        if isinstance(module, nn.Sigmoid):
            return self.graph.add("Sigmoid", name, [x])
        if isinstance(module, nn.PixelShuffle):
            return self.pixel_shuffle(node, source, int(module.upscale_factor), name)
        if isinstance(module, (nn.ReplicationPad2d, nn.ReflectionPad2d, nn.ZeroPad2d)):
            kind = {nn.ReplicationPad2d: 1, nn.ReflectionPad2d: 2, nn.ZeroPad2d: 0}[type(module)]
            left, right, top, bottom = module.padding
            return self.graph.add("Padding", name, [x], {0: top, 1: bottom, 2: left, 3: right, 4: kind})
        if isinstance(module, nn.Upsample) and module.mode == "nearest" and module.scale_factor is not None:
            return self.nearest(x, module.scale_factor, name)
        raise _Refused(f"module {node.target!r} ({type(module).__name__}) has no ncnn layer in superres's writer")

    def conv_params(self, conv: nn.Conv2d) -> tuple[dict, bytes]:
        if conv.groups != 1:
            raise _Refused(f"a grouped convolution ({conv.groups} groups)")
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise _Refused(f"a convolution padded {conv.padding_mode!r} / {conv.padding!r}")
        (kh, kw), (dh, dw), (sh, sw), (ph, pw) = (_pair(v) for v in (conv.kernel_size, conv.dilation, conv.stride, conv.padding))
        params = {0: conv.out_channels, 1: kw, 11: kh, 2: dw, 12: dh, 3: sw, 13: sh, 4: pw, 14: ph, 5: int(conv.bias is not None), 6: conv.weight.numel()}
        weights = _fp16_blob(conv.weight) + (_fp32_blob(conv.bias) if conv.bias is not None else b"")
        return _without_defaults(params), weights

    def deconv_params(self, deconv: nn.ConvTranspose2d) -> tuple[dict, bytes]:
        if deconv.groups != 1:
            raise _Refused(f"a grouped transposed convolution ({deconv.groups} groups)")
        (kh, kw), (dh, dw), (sh, sw), (ph, pw), (oh, ow) = (
            _pair(v) for v in (deconv.kernel_size, deconv.dilation, deconv.stride, deconv.padding, deconv.output_padding)
        )
        # ncnn keeps a deconvolution's kernel as (out, in, kh, kw); PyTorch as (in, out, kh, kw).
        weight = deconv.weight.permute(1, 0, 2, 3).contiguous()
        params = {
            0: deconv.out_channels, 1: kw, 11: kh, 2: dw, 12: dh, 3: sw, 13: sh,
            4: pw, 15: pw, 14: ph, 16: ph, 18: ow, 19: oh, 5: int(deconv.bias is not None), 6: weight.numel(),
        }
        weights = _fp16_blob(weight) + (_fp32_blob(deconv.bias) if deconv.bias is not None else b"")
        return _without_defaults(params), weights

    def nearest(self, x: str, factor, name: str) -> str:
        fh, fw = (factor, factor) if isinstance(factor, (int, float)) else factor
        if not (float(fh).is_integer() and float(fw).is_integer()):
            raise _Refused(f"nearest upsampling by {factor} (not a whole number)")
        return self.graph.add("Interp", name, [x], {0: 1, 1: float(fh), 2: float(fw)})

    def pixel_shuffle(self, node, source, factor: int, name: str) -> str:
        value = self.env[source]
        if isinstance(value, _AnchoredSum) and value.anchor.repeats == factor * factor and len(source.users) == 1:
            # shuffle(a + repeat_interleave(x, s*s)) = shuffle(a) + nearest_s(x)
            shuffled = self.graph.add("PixelShuffle", name, [self.blob(value.value)], {0: factor})
            anchor = self.nearest(self.blob(value.anchor.source), factor, f"{name}_anchor")
            return self.graph.add("BinaryOp", f"{name}_add", [shuffled, anchor], {0: 0})
        return self.graph.add("PixelShuffle", name, [self.blob(source)], {0: factor})

    # ---------------------------------------------------------------- functions and methods

    def function_layer(self, node):
        target = node.target
        label = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        args, kwargs = node.args, node.kwargs
        if target in (operator.add, torch.add, "add", operator.sub, torch.sub, "sub", operator.mul, torch.mul, "mul", operator.truediv, torch.div, "div"):
            return self.arithmetic(node, label)
        if target in (torch.cat, torch.concat) and _dim(args[1] if len(args) > 1 else kwargs.get("dim", 0)) == 1:
            return self.graph.add("Concat", self.name(node), [self.blob(a) for a in args[0]], {0: 0})
        if target in ("repeat_interleave", torch.repeat_interleave) and isinstance(args[1], int) and _dim(kwargs.get("dim", args[2] if len(args) > 2 else None)) == 1:
            return _Anchor(args[0], int(args[1]))
        if target in (F.pixel_shuffle, torch.pixel_shuffle):
            return self.pixel_shuffle(node, args[0], int(args[1]), self.name(node))
        if target in (torch.relu, F.relu, "relu"):
            return self.graph.add("ReLU", self.name(node), [self.blob(args[0])])
        if target in (torch.tanh, "tanh"):
            return self.graph.add("TanH", self.name(node), [self.blob(args[0])])
        if target in (torch.sigmoid, "sigmoid"):
            return self.graph.add("Sigmoid", self.name(node), [self.blob(args[0])])
        if target is F.leaky_relu:
            slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
            return self.graph.add("ReLU", self.name(node), [self.blob(args[0])], {0: float(slope)})
        if target is F.interpolate and kwargs.get("mode", "nearest") == "nearest" and kwargs.get("scale_factor") is not None:
            return self.nearest(self.blob(args[0]), kwargs["scale_factor"], self.name(node))
        if target in ("contiguous", "float"):
            return self.env[args[0]]
        raise _Refused(f"operation {label!r} has no ncnn layer in superres's writer")

    def arithmetic(self, node, label: str):
        op = {"add": 0, "sub": 1, "mul": 2, "truediv": 3, "div": 3}[label]
        a, b = node.args[:2]
        if len(node.args) > 2 or node.kwargs:
            raise _Refused(f"operation {label!r} with options {node.kwargs or node.args[2:]}")
        tensors = [isinstance(v, torch.fx.Node) for v in (a, b)]
        if all(tensors):
            if op == 0 and len(node.users) == 1:
                for value, other in ((a, b), (b, a)):
                    if isinstance(self.env[value], _Anchor):
                        return _AnchoredSum(other, self.env[value])
            shapes = [tuple(v.meta["tensor_meta"].shape) for v in (a, b) if "tensor_meta" in v.meta]
            if len(shapes) == 2 and shapes[0] != shapes[1]:
                raise _Refused(f"operation {label!r} broadcasting {shapes[0]} and {shapes[1]}")
            return self.graph.add("BinaryOp", self.name(node), [self.blob(a), self.blob(b)], {0: op})
        if not any(tensors) or not all(isinstance(v, (int, float)) or t for v, t in zip((a, b), tensors)):
            raise _Refused(f"operation {label!r} on {type(a).__name__} and {type(b).__name__}")
        if not tensors[0]:  # scalar first: b - a is ncnn's rsub (7), b / a its rdiv (8)
            a, b = b, a
            op = {1: 7, 3: 8}.get(op, op)
        return self.graph.add("BinaryOp", self.name(node), [self.blob(a)], {0: op, 1: 1, 2: float(b)})


def _dim(dim) -> int | None:
    return None if dim is None else (dim + 4 if dim < 0 else dim)


# ncnn's defaults for a convolution's optional keys (kernel_h = kernel_w and so on), left out
# of the file as converters leave them out.
def _without_defaults(params: dict) -> dict:
    defaults = {11: params[1], 2: 1, 12: params.get(2, 1), 3: 1, 13: params.get(3, 1), 14: params.get(4, 0), 15: params.get(4, 0), 16: params.get(14, params.get(4, 0)), 18: 0, 19: 0}
    return {k: v for k, v in params.items() if not (k in defaults and v == defaults[k]) and not (k == 4 and v == 0)}


# --------------------------------------------------------------------------------------


def ncnn_model_bytes(model: nn.Module, *, scale: int | None = None, name: str | None = None) -> tuple[str, bytes]:
    """The ``.param`` text and ``.bin`` bytes of ``model`` (its inference form; a luma model
    wrapped by :class:`LumaAsRgb`), without writing them. Raises :class:`SuperresError`
    naming the first operation ncnn files cannot hold."""
    label = name or type(model).__name__
    if getattr(model, "onnx_graph", None) is not None:
        raise SuperresError(f"cannot export {label!r} to ncnn: it is an ONNX graph; export the weights it came from")
    model = prepare_for_inference(model).cpu()
    scale = int(scale or getattr(model, "scale", 0))
    channels = model_contract(model).channels
    if channels == 1:
        if not scale:
            raise SuperresError(f"cannot export {label!r} to ncnn: its scale is unknown (pass scale)")
        model = LumaAsRgb(model, scale=scale).eval()
    elif channels != 3:
        raise SuperresError(f"cannot export {label!r} to ncnn: it takes {channels}-channel images; ncnn files take RGB")
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for code it cannot follow
        raise SuperresError(f"cannot export {label!r} to ncnn: its forward cannot be traced ({' '.join(str(exc).split())[:200]})") from None
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.inference_mode():
        ShapeProp(traced).propagate(torch.rand(1, 3, 16, 16))
    walker = _Walker(traced)
    try:
        output = walker.run()
    except _Refused as exc:
        raise SuperresError(f"cannot export {label!r} to ncnn: {exc}") from None
    return walker.graph.files(output)


def export_ncnn(model: nn.Module, folder: str | os.PathLike, *, name: str, scale: int | None = None) -> tuple[Path, Path]:
    """Write ``model`` as ``folder/NAME-xS.param`` and ``folder/NAME-xS.bin`` (each atomically)
    for realesrgan-ncnn-vulkan, Upscayl and chaiNNer: input ``data`` and output ``output``,
    RGB in [0, 1], fp16 kernels; returns the two paths. A luma model is wrapped to take and
    give RGB (:class:`LumaAsRgb`). Raises :class:`SuperresError` for a model with an
    operation ncnn files cannot hold, naming it."""
    scale = int(scale or getattr(model, "scale", 0))
    if not scale:
        raise SuperresError(f"cannot export {name!r} to ncnn: its scale is unknown (pass scale)")
    param_text, weights = ncnn_model_bytes(model, scale=scale, name=name)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SuperresError(f"cannot write to '{folder}': it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)  # an apps' model folder may not exist yet
    except OSError as exc:
        raise SuperresError(f"cannot write to '{folder}': {exc.strerror or exc}") from None
    param_name, bin_name = ncnn_file_names(name, scale)
    paths = folder / param_name, folder / bin_name
    try:
        write_atomic(paths[1], weights)
        write_atomic(paths[0], param_text.encode("utf-8"))
    except OSError as exc:
        raise SuperresError(f"cannot write '{paths[0]}': {exc.strerror or exc}") from None
    return paths
