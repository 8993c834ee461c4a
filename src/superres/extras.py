"""Optional parts of superres: which extra carries which module, and the one error for a missing one.

The core install carries what upscaling images needs (PyTorch, NumPy, Pillow, safetensors and
the 16-bit image codecs). Training, the web app, ONNX, video and the plots are extras
(``pip install 'superres[train]'`` and so on, or ``superres[all]``). A module that needs one
imports it through :func:`require`, so that a missing extra is one line naming the pip command
rather than a traceback ending in ``ModuleNotFoundError``:

    >>> lightning = require("lightning", extra="train")
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from superres.errors import SuperresError

__all__ = ["MissingExtraError", "install_command", "require", "require_installed"]


class MissingExtraError(SuperresError, ImportError):
    """A part of superres was used whose optional dependencies are not installed.

    A :class:`~superres.errors.SuperresError` (the CLI prints it as one line) and an
    :class:`ImportError` (code that guards an optional import keeps working)."""


def install_command(extra: str) -> str:
    """The pip command that installs ``extra``: ``pip install 'superres[extra]'``."""
    return f"pip install 'superres[{extra}]'"


def require(module: str, *, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` and return it, or raise :class:`MissingExtraError` naming the extra.

    ``purpose`` says what needed it ("training", "the web app"); by default the extra's name.
    Only a missing module is translated: an installed module that fails to import for
    another reason (a broken build) raises its own error, which is the useful one then.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise
        raise _missing(top, extra, purpose) from None


def require_installed(*modules: str, extra: str, purpose: str | None = None) -> None:
    """:func:`require`'s check of top-level ``modules`` without importing them, for a module
    whose import takes seconds and is better done later, beside other work (Ray Data)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise _missing(module, extra, purpose)


def _missing(top: str, extra: str, purpose: str | None) -> MissingExtraError:
    return MissingExtraError(f"{purpose or extra} needs the '{top}' package, which is not installed: {install_command(extra)}", name=top)
