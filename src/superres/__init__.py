"""superres: deep-learning single-image super-resolution.

    >>> import superres
    >>> up = superres.load("swiftrep", scale=4)     # an Upscaler
    >>> big = up.upscale(image)                      # PIL, numpy or torch; the same kind back

    >>> lam = superres.explain("swiftrep", image, (120, 80, 16, 16), scale=4)  # which inputs made that box

``load`` and ``Upscaler`` come from :mod:`superres.inference`, ``explain`` from
:mod:`superres.attribution` (a module of its own name, so that ``superres.explain`` stays this
function), all imported on first use, so ``import superres`` stays cheap (no PyTorch until a
model is needed).
"""

# The one place the version is written: pyproject.toml reads it from here (setuptools'
# dynamic version), `superres --version` and the web app print it, and CHANGELOG.md's newest
# heading must match it (tests/test_release.py).
__version__ = "0.4.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers and editors
    from superres.attribution import explain
    from superres.inference.upscaler import Upscaler, load

__all__ = ["Upscaler", "load", "explain", "__version__"]


def __getattr__(name: str):
    if name == "explain":
        from superres.attribution import explain

        return explain
    if name in __all__:
        from superres import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'superres' has no attribute {name!r}")
