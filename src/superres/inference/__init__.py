"""Inference: the tiling engine, the ``Upscaler`` API, video, and the ONNX Runtime backend.

    >>> from superres.inference import load
    >>> up = load("swiftrep", scale=4, tile=512)
    >>> out = up.upscale(image)        # PIL, numpy or torch in; the same kind out

``Upscaler`` and ``load`` are imported on first use, so that ``import superres.inference``
(and the CLI's argument parsing, which reads ``DEFAULT_MODEL``) does not load PyTorch.
"""

#: The flagship model: ``superres.load()``'s and ``superres explain``'s default, and the model
#: ``auto`` gives clean pictures.
DEFAULT_MODEL = "swiftrep"

#: What ``superres upscale`` and the web app run when no model is named: per photo, the
#: fidelity model that suits it (:mod:`superres.inference.autopick`). On Set14 x4 it gives up
#: 0.06 dB to the flagship on clean inputs and gains 0.4-0.7 dB on everyday JPEGs and noise
#: (docs/REALWORLD.md, "-m auto"). The Python API keeps the flagship, so that a script's
#: results do not change with the picture's statistics unless it asks for "auto".
DEFAULT_PHOTO_MODEL = "auto"

__all__ = ["DEFAULT_MODEL", "DEFAULT_PHOTO_MODEL", "Upscaler", "load"]


def __getattr__(name: str):
    if name in ("Upscaler", "load"):
        from superres.inference import upscaler

        return getattr(upscaler, name)
    raise AttributeError(f"module 'superres.inference' has no attribute {name!r}")
