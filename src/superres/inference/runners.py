"""Tile runners: a model as a callable on float32 numpy batches, (B, C, h, w) in and
(B, C, s*h, s*w) out, which is all the tiling engine (:mod:`.tiling`) needs. One per backend:
:class:`TorchRunner` (PyTorch), :class:`OnnxRunner` (ONNX Runtime) and :class:`OpenVinoRunner`
(OpenVINO, on the same exported graph).

Each also has ``forward``, the same on float32 CPU tensors: the whole-image path of the
:class:`~superres.inference.upscaler.Upscaler` stays in torch from the decoded pixels to
the encoded ones, without a numpy round trip per image."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from superres.errors import SuperresError
from superres.extras import require

__all__ = ["OnnxRunner", "OpenVinoRunner", "TorchRunner"]

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class TorchRunner:
    """A PyTorch model as a tile runner: float32 numpy (B, C, h, w) in and out.

    In fp16 or bf16 it runs under autocast; an output that is not finite (fp16 overflows on
    some models) is recomputed in fp32, and the runner stays in fp32 from then on
    (``fell_back`` tells). On CUDA, and in bf16 on a CPU, the model and its inputs are
    channels-last, the layout cuDNN's and oneDNN's fastest convolutions use (on this
    project's AVX-512 CPU, bf16 channels-last ran SwiftRep x4 13% faster than bf16
    channels-first, and fp32 gained nothing from it).
    """

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "fp32"):
        self.device = device
        self.dtype = _DTYPES.get(precision)
        self.channels_last = device.type == "cuda" or (device.type == "cpu" and self.dtype == torch.bfloat16)
        self.model = model.to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.fell_back = False

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.forward(torch.from_numpy(np.asarray(batch, dtype=np.float32))).numpy()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) float32 CPU tensor -> (B, C, s*h, s*w) float32 CPU tensor."""
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is not None:
            with torch.autocast(self.device.type, dtype=self.dtype):
                y = self.model(x)
            if bool(torch.isfinite(y).all()):
                return y.float().cpu()
            warnings.warn(f"{self.dtype} output was not finite; running in float32 from now on", RuntimeWarning, stacklevel=3)
            self.dtype = None
            self.fell_back = True
        return self.model(x).float().cpu()


class OnnxRunner:
    """An ONNX Runtime session as a tile runner: float32 (B, C, h, w) -> (B, C, s*h, s*w).

    ``threads`` is ONNX Runtime's intra-op thread count (None: its default, one per core);
    ``device`` "cpu" or "cuda" picks the execution provider.
    """

    def __init__(self, onnx_model: bytes | str | os.PathLike, *, threads: int | None = None, device: str | torch.device = "cpu"):
        ort = require("onnxruntime", extra="onnx", purpose="the ONNX backend")

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # fatal only: failures arrive as exceptions, not log lines
        device_type = torch.device(device).type
        if device_type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SuperresError("the ONNX backend on CUDA needs onnxruntime-gpu (CUDAExecutionProvider is not available)")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device_type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise SuperresError(f"the ONNX backend runs on cpu or cuda, not {device_type}")
        source = onnx_model if isinstance(onnx_model, bytes) else os.fspath(onnx_model)
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise SuperresError(f"cannot load the ONNX model: {' '.join(str(exc).split())[:300]}") from None
        entry = self.session.get_inputs()[0]
        self.input_name = entry.name
        # An fp16 graph (export --fp16) takes and gives float16; the tiles stay float32.
        self.input_dtype = np.float16 if entry.type == "tensor(float16)" else np.float32
        self.threads = threads

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        out = self.session.run(None, {self.input_name: x})[0]
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`__call__` on float32 CPU tensors."""
        return torch.from_numpy(self(x.numpy()))


class OpenVinoRunner:
    """An exported ONNX graph compiled by OpenVINO for the CPU, as a tile runner: float32
    (B, C, h, w) -> (B, C, s*h, s*w).

    ``precision`` "fp32" asks OpenVINO for f32 inference (its default on a CPU with bf16
    instructions is bf16); "bf16" for bf16. The graph keeps its dynamic batch, height and
    width, so tiles and whole images of any size share one compiled model. ``threads`` is
    OpenVINO's inference thread count (None: its default, one per core).
    (docs/SPEED.md, "OpenVINO": where it is faster than PyTorch and ONNX Runtime here.)
    """

    def __init__(self, onnx_model: bytes | str | os.PathLike, *, threads: int | None = None, precision: str = "fp32"):
        ov = require("openvino", extra="openvino", purpose="the OpenVINO backend")

        if precision not in ("fp32", "bf16"):
            raise SuperresError(f"the OpenVINO backend runs in fp32 or bf16, not {precision}")
        source = onnx_model if isinstance(onnx_model, bytes) else Path(onnx_model).read_bytes()
        config = {"INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            graph = ov.Core().read_model(io.BytesIO(source))
            self.compiled = ov.Core().compile_model(graph, "CPU", config)
        except Exception as exc:  # OpenVINO raises its own types for a graph it cannot compile
            raise SuperresError(f"cannot load the model in OpenVINO: {' '.join(str(exc).split())[:300]}") from None
        self.request = self.compiled.create_infer_request()
        entry = graph.inputs[0]
        self.input_dtype = np.float16 if entry.get_element_type().get_type_name() == "f16" else np.float32
        self.threads, self.precision = threads, precision

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        out = self.request.infer({0: x})[0]
        return np.array(out, dtype=np.float32)  # a copy: the request reuses its output buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`__call__` on float32 CPU tensors."""
        return torch.from_numpy(self(x.numpy()))
