"""Checkpoints: superres's own safetensors format, with metadata, loaded back through the registry.

A superres weight file is a safetensors file whose metadata (string to string) holds:

- ``superres.arch``: the registry name; ``superres.scale``: the integer scale;
- ``superres.hyperparameters``: JSON of the constructor's keyword arguments (besides scale);
- anything else the caller adds under ``superres.*`` (the training recipe, config, commit,
  steps, data, measured quality), JSON-encoded.

Loading builds the model from the registry and loads the tensors strictly: a file that does
not fit raises :class:`CheckpointError` naming the file and the keys or shapes at fault,
never a half-loaded model.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from superres.atomic import atomic_path
from superres.errors import SuperresError
from superres.models.registry import create, create_shapes

__all__ = ["CheckpointError", "save", "load_superres", "read_metadata", "update_metadata", "precision_change", "check_state_dict", "model_hyperparameters", "read_tensors", "tensor_shapes", "torch_load", "training_stages"]


class CheckpointError(SuperresError, ValueError):
    """A checkpoint that cannot be read or does not fit its architecture (one-line message)."""


def model_hyperparameters(model: nn.Module) -> dict:
    """The hyperparameters a model was built with, as recorded by :func:`superres.models.create`."""
    return dict(getattr(model, "superres_hyperparameters", {}))


def save(model: nn.Module, path: str | os.PathLike, *, arch: str, scale: int, hyperparameters: dict, metadata: dict | None = None) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically (:mod:`superres.atomic`)."""
    path = Path(path)
    meta = {
        "superres.arch": arch,
        "superres.scale": str(scale),
        "superres.hyperparameters": json.dumps(hyperparameters, sort_keys=True),
    }
    for key, value in (metadata or {}).items():
        meta[f"superres.{key}"] = json.dumps(value, sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=meta)
    return path


def update_metadata(path: str | os.PathLike, entries: dict) -> Path:
    """Add or replace ``superres.<key>`` metadata entries of a safetensors file, leaving every
    tensor byte for byte as it was (read raw and written back, never through a model), and
    the file replaced atomically."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from None
    for key, value in entries.items():
        meta[f"superres.{key}"] = json.dumps(value, sort_keys=True)
    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=meta)
    return path


def precision_change(metadata: dict, precision: str, dataset: str = "Set5") -> float | None:
    """The PSNR change (dB) on ``dataset`` measured for running a weight file in ``precision``
    ("bf16", "int8") instead of fp32, as recorded in its metadata (``precision``); None if
    it was never measured."""
    entry = (metadata.get("precision") or {}).get(precision) or {}
    value = entry.get(dataset)
    return None if value is None else float(value)


def read_metadata(path: str | os.PathLike) -> dict:
    """The decoded ``superres.*`` metadata of a safetensors file (keys without the prefix)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from None
    out = {}
    for key, value in raw.items():
        if not key.startswith("superres."):
            continue
        name = key[len("superres."):]
        if name in ("arch",):
            out[name] = value
        elif name == "scale":
            if not value.isdigit():
                raise CheckpointError(f"{str(path)!r}: its metadata superres.scale is {value!r}, not a whole number")
            out[name] = int(value)
        else:
            try:
                out[name] = json.loads(value)
            except json.JSONDecodeError:
                out[name] = value
    return out


def training_stages(training: dict | None) -> list[tuple[str, int | None]]:
    """The runs behind a weight file's ``training`` metadata, first stage first, as
    ``(run name, iterations)``; a run is named after its ``output_dir`` (``runs/swiftrep_x2``
    was trained by ``configs/swiftrep_x2.yaml``) and later stages start from earlier ones."""
    stages = []
    while training:
        run = Path((training.get("config") or {}).get("output_dir") or "?").name
        stages.append((run, training.get("iterations")))
        training = training.get("started_from")
    return stages[::-1]


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` fits ``model`` exactly (keys and shapes)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if shapes:
        problems.append(f"shape mismatch {_few(shapes)}")
    if problems:
        raise CheckpointError(f"{source!r} does not fit {type(model).__name__}: " + "; ".join(problems))


def torch_load(path: str | os.PathLike) -> object:
    """What a PyTorch file holds, read on the CPU with ``torch.load(..., weights_only=True)``:
    tensors and plain containers only, never code. Said explicitly, so that neither an old
    torch's default nor ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` (which only fills an unsaid
    argument) can turn it into a free unpickling. Every pickled file superres reads comes
    through here; a file that cannot be read raises :class:`CheckpointError` with a
    one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {str(path)!r}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read {str(path)!r}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch.load fails in many ways on a bad file)
        if path.suffix.lower() == ".onnx":
            raise CheckpointError(_ONNX_REFUSED.format(path=str(path))) from None
        raise CheckpointError(f"cannot read {str(path)!r}: {_why_torch_load_failed(exc)}") from None


# Only an exported graph that says what it is (superres.scale in its metadata: what superres
# export writes) is a model (superres.models.onnx_graph); this is for any other .onnx file that
# reaches the PyTorch reader.
_ONNX_REFUSED = (
    "{path!r} is an ONNX graph, not model weights; superres runs the graphs it exported (superres export "
    "--format onnx) and weights (.safetensors, or a registry name); run other .onnx files with ONNX Runtime directly"
)


def _why_torch_load_failed(exc: Exception) -> str:
    # torch's messages run to several lines and advise weights_only=False, which would run
    # whatever the file holds: keep only the cause, and say what superres reads instead.
    text = str(exc)
    # torch < 2.6: "Unsupported global: GLOBAL mod.name"; later: "unsupported GLOBAL mod.name whose module ..."
    refused = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", text, re.IGNORECASE)
    if refused:
        return (
            f"it holds a pickled {refused[1]} object, which superres never unpickles (that could run code); "
            "superres reads safetensors files and PyTorch files of tensors (torch.save(model.state_dict(), ...))"
        )
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if unpickler:
        return f"not a PyTorch checkpoint (unpickling: {unpickler[1].strip()})"
    if "central directory" in text or "PytorchStreamReader" in text:
        return f"truncated or corrupted checkpoint ({_first_line(exc).split('. ')[0]})"
    if "weights_only" in _first_line(exc):
        return "not a PyTorch file of tensors that superres can read safely"
    return f"not a PyTorch checkpoint ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _few(items: list[str], n: int = 4) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


def read_tensors(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> object:
    """What a weights file holds: a safetensors file's tensors, or what a PyTorch file holds
    (:func:`torch_load`: tensors and plain containers, never code). The one reader of
    checkpoint contents; a file that cannot be read raises :class:`CheckpointError` with a
    one-line reason."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return torch_load(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {str(path)!r}: no such file")
    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: not a valid safetensors file ({_first_line(exc)})") from None


def tensor_shapes(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file as empty tensors of their shapes (read from its
    header; nothing is allocated), for :func:`check_state_dict` and parameter counts."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from None


def load_superres(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a superres safetensors checkpoint into its registered architecture."""
    meta = read_metadata(path)
    if "arch" not in meta or "scale" not in meta:
        raise CheckpointError(f"{str(path)!r} has no superres metadata (superres.arch, superres.scale)")
    hyperparameters = meta.get("hyperparameters", {})
    if not isinstance(hyperparameters, dict):
        raise CheckpointError(f"{str(path)!r}: its metadata superres.hyperparameters is not a mapping")
    try:
        # First without memory (the meta device): the metadata is the file's word, and a
        # 100-byte file must not make us allocate what its hyperparameters ask for. Only a
        # model whose every tensor the file holds, shape for shape, is then built for real,
        # so what is allocated is bounded by the file's size.
        shape_only = create_shapes(meta["arch"], scale=meta["scale"], **hyperparameters)
        check_state_dict(shape_only, tensor_shapes(path), str(path))
        model = create(meta["arch"], scale=meta["scale"], **hyperparameters)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r}: {exc.args[0] if isinstance(exc, KeyError) else exc}") from None
    state = read_tensors(path, map_location)
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    model.superres_metadata = meta
    return model.eval()
