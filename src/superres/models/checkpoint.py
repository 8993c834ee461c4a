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
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from superres.errors import SuperresError
from superres.models.registry import create

__all__ = ["CheckpointError", "save", "load_superres", "read_metadata", "check_state_dict", "model_hyperparameters", "training_stages"]


class CheckpointError(SuperresError, ValueError):
    """A checkpoint that cannot be read or does not fit its architecture (one-line message)."""


def model_hyperparameters(model: nn.Module) -> dict:
    """The hyperparameters a model was built with, as recorded by :func:`superres.models.create`."""
    return dict(getattr(model, "superres_hyperparameters", {}))


def save(model: nn.Module, path: str | os.PathLike, *, arch: str, scale: int, hyperparameters: dict, metadata: dict | None = None) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically (temp file, then rename)."""
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a weight file is ordinary data
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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


def _few(items: list[str], n: int = 4) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _tensor_shapes(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file as empty tensors of their shapes (read from its
    header; nothing is allocated), for :func:`check_state_dict`."""
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
        with torch.device("meta"):
            shape_only = create(meta["arch"], scale=meta["scale"], **hyperparameters)
        check_state_dict(shape_only, _tensor_shapes(path), str(path))
        model = create(meta["arch"], scale=meta["scale"], **hyperparameters)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r}: {exc.args[0] if isinstance(exc, KeyError) else exc}") from None
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from None
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    model.superres_metadata = meta
    return model.eval()
