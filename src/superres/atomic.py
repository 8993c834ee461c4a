"""Writing a file atomically: it appears complete under its name, or not at all.

The one way superres writes the files people keep (images, weight files, training
checkpoints, ONNX graphs, videos): a temporary file in the same folder (so the final rename
never crosses a file system), flushed to disk, given the permissions a plain ``open()``
would have given it, then renamed over the target. A failure at any point removes the
temporary file and leaves a previous file at the target untouched. Imports nothing of ours:
every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_atomic"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which races with any
# thread that creates a file meanwhile.
_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for the caller to write the file to; when the block
    ends without an exception the file is synced to disk and renamed over ``path``.

    ``suffix`` ends the temporary name: a writer that picks its format from the extension
    (PyAV) needs ``.tmp.mp4`` rather than ``.tmp``. Errors (``OSError`` and the writer's own)
    propagate; the caller turns them into its one-line message.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        _sync(temp)
        # mkstemp creates the file private (0600); give it what a plain open() would have.
        os.chmod(temp, 0o666 & ~_UMASK)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_folder(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder (Windows cannot).
    with contextlib.suppress(OSError):
        _sync(folder)
