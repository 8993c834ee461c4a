"""Reading training checkpoints (Lightning ``.ckpt`` files): the one place they are opened.

A checkpoint is loaded with ``torch.load(..., weights_only=True)`` only, never a free
unpickling (:func:`superres.models.checkpoint.torch_load`), and a file that cannot be read
is a one-line :class:`CheckpointError`. What
``SRModule.on_save_checkpoint`` wrote under ``superres`` (iteration, config, provenance) is
:attr:`TrainingCheckpoint.record`; the generator's weights are read out of the state dict
by :meth:`TrainingCheckpoint.generator_state`. Resuming reads the whole checkpoint here too
(:func:`read_for_resume`) and hands it to Lightning, whose own reader would pass torch's
default through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from superres.models.checkpoint import CheckpointError, torch_load

__all__ = ["TrainingCheckpoint", "read_for_resume", "read_training_checkpoint"]


@dataclass(frozen=True)
class TrainingCheckpoint:
    """A training checkpoint's tensors and its ``superres`` record."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    record: dict = field(default_factory=dict)

    @property
    def scale(self) -> int | None:
        """The scale the run trained at (None when the file does not say, e.g. a bare state dict)."""
        return ((self.record.get("config") or {}).get("model") or {}).get("scale")

    def generator_state(self, *, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
        """The generator's state dict: the EMA weights when there are some and ``prefer_ema``."""
        for prefix in ("ema_generator.", "generator.") if prefer_ema else ("generator.",):
            found = {k[len(prefix):]: v for k, v in self.state_dict.items() if k.startswith(prefix)}
            if found:
                return found
        raise CheckpointError(f"'{self.path}' holds no generator weights")


def read_training_checkpoint(path: str | os.PathLike) -> TrainingCheckpoint:
    """Read the training checkpoint ``path``; raises :class:`CheckpointError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: '{path}'")
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"cannot read '{path}': it holds a {type(ckpt).__name__}, not a checkpoint")
    return TrainingCheckpoint(path, ckpt.get("state_dict", ckpt), ckpt.get("superres") or {})


def read_for_resume(path: str | os.PathLike) -> dict:
    """The whole training checkpoint ``path`` (optimizer, scheduler and loop states too), for
    Lightning to resume from; raises :class:`CheckpointError` with a one-line reason unless it
    is a superres training checkpoint (empty, truncated, someone else's, holding code)."""
    path = Path(path)
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("superres"), dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"'{path}' is not a superres training checkpoint (no 'superres' section)")
    return ckpt
