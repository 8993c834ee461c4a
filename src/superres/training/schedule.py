"""Learning-rate schedules and the EMA update: small pure functions."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["lr_factor", "ema_update"]


def lr_factor(
    step: int,
    *,
    max_steps: int,
    schedule: str,
    base_lr: float,
    warmup_steps: int = 0,
    min_lr: float = 0.0,
    milestones: list[int] | tuple[int, ...] = (),
    gamma: float = 0.5,
) -> float:
    """The multiplier of ``base_lr`` at ``step``: linear warm-up from 0, then
    ``constant``, ``cosine`` (from 1 down to ``min_lr / base_lr`` at ``max_steps``) or
    ``multistep`` (times ``gamma`` at each milestone passed)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "multistep":
        return gamma ** sum(step >= m for m in milestones)
    if schedule == "cosine":
        span = max(max_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        floor = min_lr / base_lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}")


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
