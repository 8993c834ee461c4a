"""Writing a file atomically: it appears complete under its name, or not at all.

The one way superres writes the files people keep (images, weight files, training
checkpoints, ONNX graphs, videos): a temporary file in the same folder (so the final rename
never crosses a file system), flushed to disk, given the permissions a plain ``open()``
would have given it, then renamed over the target. A failure at any point removes the
temporary file and leaves a previous file at the target untouched. Imports nothing of ours:
every layer may use it.

A temporary file still being written when the process is told to stop (SIGTERM from
``timeout`` or a scheduler, SIGINT from Ctrl+C) is removed too: :func:`remove_on_signals`
installs handlers that delete every live temporary file, from any thread, then do what the
signal did before (die by it, raise ``KeyboardInterrupt``, or call the handler that was
there). :func:`atomic_path` installs them on its first use in the main thread; a program
whose writes happen in other threads (the CLI) calls it at the start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "remove_leftovers", "remove_on_signals", "signals_handled_elsewhere", "write_atomic"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Temporary files being written now, by any thread; the signal handler removes them.
_LIVE: set[Path] = set()
_LIVE_LOCK = threading.Lock()
_PREVIOUS: dict[int, object] = {}
# Non-empty while a framework owns the signals (signals_handled_elsewhere).
_HANDLED_ELSEWHERE: list[bool] = []


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
    if threading.current_thread() is threading.main_thread():
        remove_on_signals()
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    temp = Path(name)
    with _LIVE_LOCK:
        _LIVE.add(temp)
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
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(temp)
    _sync_folder(path.parent)


def remove_leftovers(path: str | os.PathLike) -> int:
    """Remove the temporary files that writes of ``path`` by :func:`atomic_path` left when their
    process was killed outright (SIGKILL: no handler runs), e.g. a Ray replica ended with
    its job; returns how many. Call it only when no write of ``path`` can still be running."""
    path = Path(path)
    removed = 0
    with _LIVE_LOCK:
        live = set(_LIVE)
    for leftover in path.parent.glob(f".{_glob_escape(path.name)}.*"):
        if leftover not in live:
            with contextlib.suppress(OSError):
                os.unlink(leftover)
                removed += 1
    return removed


def remove_on_signals() -> None:
    """Make SIGTERM and SIGINT remove every temporary file :func:`atomic_path` is writing,
    then act as they did before. Installed once; only the main thread can install signal
    handlers, so elsewhere this does nothing; nor inside :func:`signals_handled_elsewhere`."""
    if _PREVIOUS or _HANDLED_ELSEWHERE or threading.current_thread() is not threading.main_thread():
        return
    for signum in _SIGNALS:
        _PREVIOUS[signum] = signal.getsignal(signum)
        signal.signal(signum, _on_signal)


@contextlib.contextmanager
def signals_handled_elsewhere() -> Iterator[None]:
    """A block in which a framework owns SIGTERM and SIGINT (Lightning: it saves a checkpoint
    and stops the run). Lightning calls the handler it found before its own; ours would end
    the process by the signal's default action before the checkpoint is written, so ours
    step aside for the block and come back after it. A write cut short still removes its
    temporary file, by :func:`atomic_path`'s own cleanup as the framework unwinds."""
    installed = bool(_PREVIOUS)
    if installed and threading.current_thread() is threading.main_thread():
        for signum, previous in _PREVIOUS.items():
            signal.signal(signum, previous)
        _PREVIOUS.clear()
    _HANDLED_ELSEWHERE.append(True)
    try:
        yield
    finally:
        _HANDLED_ELSEWHERE.pop()
        if installed:
            remove_on_signals()


def _on_signal(signum: int, frame) -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for temp in live:
        # A writer's own side files are named after its temporary file (a COG's staging
        # copy, GDAL's .aux.xml): those go too.
        for leftover in temp.parent.glob(f"{_glob_escape(temp.name)}*"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # The default action: end the process by this signal, as it would have without us.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


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
