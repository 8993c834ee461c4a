"""An ONNX graph that superres exported, loaded back as a model and run by ONNX Runtime.

``superres export --format onnx`` writes what a graph needs to be used without its weights
file into the ONNX ``metadata_props`` (``superres.scale``, ``superres.channel_order``,
``superres.input_range``, ...; :func:`superres.inference.onnx.export_onnx`). Such a file is
then a model like any checkpoint: ``superres upscale -m model.onnx`` reads its scale from it.
A graph without ``superres.scale`` (one another tool wrote) is refused: superres cannot know
what it takes and gives.

The model is an ``nn.Module`` so that the upscaler, the paper protocol and the tiling engine
take it as they take any other; its forward hands the batch to ONNX Runtime on the CPU. It has
no parameters, cannot be trained, re-exported or saved as safetensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from superres.extras import require
from superres.models.checkpoint import CheckpointError
from superres.models.contract import Contract

__all__ = ["OnnxGraphModel", "graph_metadata", "load_onnx_graph"]

_CHANNELS = {"RGB": 3, "Y": 1}


def _session(data: bytes, threads: int | None = None):
    ort = require("onnxruntime", extra="onnx", purpose="running an ONNX model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or 0)
    options.log_severity_level = 4  # failures arrive as exceptions
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def graph_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, as a dict (empty if it has none); raises
    :class:`CheckpointError` for a file ONNX Runtime cannot read."""
    try:
        return dict(_session(Path(path).read_bytes(), threads=1).get_modelmeta().custom_metadata_map)
    except OSError as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except Exception as exc:  # onnxruntime raises its own types for a file that is not a graph
        raise CheckpointError(f"cannot read {str(path)!r}: not an ONNX model ({' '.join(str(exc).split())[:200]})") from None


class OnnxGraphModel(nn.Module):
    """A superres-written ONNX graph behind the model interface: (B, C, H, W) float in [0, 1]
    in, (B, C, sH, sW) out, computed by ONNX Runtime (fp16 graphs take and give fp16, which
    this casts to and from). ``onnx_graph`` is the file's bytes, which the upscaler's ONNX
    backend runs directly."""

    def __init__(self, data: bytes, metadata: dict[str, str], source: str):
        super().__init__()
        self.onnx_graph = data
        self.source = source
        self.scale = int(metadata["superres.scale"])
        self.contract = Contract(channels=_CHANNELS.get(metadata.get("superres.channel_order", "RGB"), 3))
        self.superres_arch = metadata.get("superres.arch") or "onnx-graph"
        self.superres_hyperparameters = {}
        self.superres_metadata = {"arch": self.superres_arch, "scale": self.scale, "source": "ONNX graph", "onnx": metadata}
        self._runtime = None

    def __deepcopy__(self, memo):
        # An ONNX Runtime session cannot be copied; the bytes are all a copy needs.
        copy = OnnxGraphModel(self.onnx_graph, self.superres_metadata["onnx"], self.source)
        copy.train(self.training)
        return copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._runtime is None:
            self._runtime = _session(self.onnx_graph)
        entry = self._runtime.get_inputs()[0]
        dtype = np.float16 if entry.type == "tensor(float16)" else np.float32
        batch = np.ascontiguousarray(x.detach().float().cpu().numpy(), dtype=dtype)
        out = self._runtime.run(None, {entry.name: batch})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(device=x.device, dtype=x.dtype)


def load_onnx_graph(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> OnnxGraphModel:
    """Load an ONNX file superres exported (it records ``superres.scale``) as a model run by
    ONNX Runtime; a graph without superres's metadata raises :class:`CheckpointError` saying so."""
    path = Path(path)
    metadata = graph_metadata(path)
    scale = metadata.get("superres.scale", "")
    if not scale.isdigit():
        raise CheckpointError(
            f"{str(path)!r} is an ONNX graph without superres's metadata (superres.scale), so its scale and input are "
            "unknown; superres runs the graphs it exported (superres export --format onnx), or the weights (.safetensors, "
            "a registry name); run other .onnx files with ONNX Runtime directly"
        )
    if torch.device(map_location).type != "cpu":
        raise CheckpointError(f"{str(path)!r}: an ONNX graph runs on the CPU here; for CUDA, load its weights with --backend onnx")
    return OnnxGraphModel(path.read_bytes(), metadata, str(path)).eval()
