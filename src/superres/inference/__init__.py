"""Inference: the tiling engine, the ``Upscaler`` API, video, and the ONNX Runtime backend.

    >>> from superres.inference import load
    >>> up = load("swiftrep", scale=4, tile=512)
    >>> out = up.upscale(image)        # PIL, numpy or torch in; the same kind out

``Upscaler`` and ``load`` are imported on first use, so that ``import superres.inference``
(and the CLI's argument parsing, which reads ``DEFAULT_MODEL``) does not load PyTorch.
"""

#: The flagship model, the one ``superres upscale`` and ``superres.load()`` use by default.
DEFAULT_MODEL = "swiftrep"

__all__ = ["DEFAULT_MODEL", "Upscaler", "load"]


def __getattr__(name: str):
    if name in ("Upscaler", "load"):
        from superres.inference import upscaler

        return getattr(upscaler, name)
    raise AttributeError(f"module 'superres.inference' has no attribute {name!r}")
