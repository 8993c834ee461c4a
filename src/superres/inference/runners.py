"""Tile runners: a model as a callable on float32 numpy batches, (B, C, h, w) in and
(B, C, s*h, s*w) out, which is all the tiling engine (:mod:`.tiling`) needs. One per backend:
:class:`TorchRunner` (PyTorch) and :class:`OnnxRunner` (ONNX Runtime).

Each also has ``forward``, the same on float32 CPU tensors: the whole-image path of the
:class:`~superres.inference.upscaler.Upscaler` stays in torch from the decoded pixels to
the encoded ones, without a numpy round trip per image."""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from torch import nn

from superres.errors import SuperresError
from superres.extras import require

__all__ = ["OnnxRunner", "TorchRunner"]

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
