"""Inference: the tiling engine, the ``Upscaler`` API, video, and the ONNX Runtime backend.

    >>> from superres.inference import load
    >>> up = load("swiftrep", scale=4, tile=512)
    >>> out = up.upscale(image)        # PIL, numpy or torch in; the same kind out

``Upscaler`` and ``load`` are imported on first use, so that ``import superres.inference``
does not load PyTorch. ``DEFAULT_MODEL`` is :data:`superres.options.DEFAULT_MODEL`.
"""

from typing import TYPE_CHECKING

from superres.options import DEFAULT_MODEL, DEFAULT_PHOTO_MODEL

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers and editors
    from superres.inference.upscaler import Upscaler, load


__all__ = ["DEFAULT_MODEL", "DEFAULT_PHOTO_MODEL", "Upscaler", "load"]


def __getattr__(name: str):
    if name in ("Upscaler", "load"):
        from superres.inference import upscaler

        return getattr(upscaler, name)
    raise AttributeError(f"module 'superres.inference' has no attribute {name!r}")
