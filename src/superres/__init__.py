"""superres: deep-learning single-image super-resolution.

    >>> import superres
    >>> up = superres.load("swiftrep", scale=4)     # an Upscaler
    >>> big = up.upscale(image)                      # PIL, numpy or torch; the same kind back

``load`` and ``Upscaler`` come from :mod:`superres.inference` and are imported on first use,
so ``import superres`` stays cheap (no PyTorch until a model is needed).
"""

__all__ = ["Upscaler", "load"]


def __getattr__(name: str):
    if name in __all__:
        from superres import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'superres' has no attribute {name!r}")
