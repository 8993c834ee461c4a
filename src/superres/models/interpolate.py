"""Network interpolation (ESRGAN, Wang et al. 2018, section 3.4): a continuous control between
a fidelity model and a perceptual (GAN) model fine-tuned from it.

Both networks share one architecture and, because the GAN model started from the fidelity
one, their weights lie close enough that every parameter can be blended linearly:

    theta(alpha) = (1 - alpha) * theta_fidelity + alpha * theta_perceptual

``alpha = 0`` is the fidelity model (highest PSNR, smooth), ``alpha = 1`` the perceptual one
(sharp texture, some invented detail); values between trade one for the other without the
noise and artefacts that blending the two output images gives.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from superres.errors import SuperresError

__all__ = ["InterpolationError", "interpolate"]


class InterpolationError(SuperresError):
    """Two models that cannot be blended, or a strength outside [0, 1]."""


def interpolate(fidelity: nn.Module, perceptual: nn.Module, alpha: float) -> nn.Module:
    """A new model whose every floating-point tensor is ``(1 - alpha) * fidelity + alpha *
    perceptual``; both must be the same network class with the same hyperparameters and
    scale (their registry names may differ). Integer buffers (counters) are taken from the fidelity model."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise InterpolationError(f"strength must lie in [0, 1] (0 = fidelity, 1 = perceptual), got {alpha:g}")
    # The registry names may differ (swiftrep-real and swiftrep-real-gan are one network).
    if type(fidelity) is not type(perceptual):
        raise InterpolationError(
            f"cannot blend these two models: they differ in architecture ({type(fidelity).__name__} vs {type(perceptual).__name__})"
        )
    for attribute in ("scale", "superres_hyperparameters"):
        a, b = getattr(fidelity, attribute, None), getattr(perceptual, attribute, None)
        if a != b:
            raise InterpolationError(
                f"cannot blend these two models: they differ in {attribute.removeprefix('superres_')} ({a!r} vs {b!r})"
            )
    fid, per = fidelity.state_dict(), perceptual.state_dict()
    if fid.keys() != per.keys() or any(fid[k].shape != per[k].shape for k in fid):
        raise InterpolationError("cannot blend these two models: their tensors differ in names or shapes")
    blended = {
        k: torch.lerp(v, per[k].to(v.dtype), alpha) if v.is_floating_point() else v.clone()
        for k, v in fid.items()
    }
    model = copy.deepcopy(fidelity)
    model.load_state_dict(blended)
    return model
