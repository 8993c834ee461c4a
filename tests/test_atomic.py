"""The one atomic write: complete file or none, ordinary permissions, nothing left behind."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from superres.atomic import atomic_path, write_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_replaces_the_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"previous")
    assert write_atomic(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_a_failing_writer_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as temp:
            temp.write_bytes(b"half a chec")
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_the_temporary_file_is_beside_the_target_with_the_asked_suffix(tmp_path):
    with atomic_path(tmp_path / "clip.mp4", suffix=".tmp.mp4") as temp:
        assert temp.parent == tmp_path and temp.name.startswith(".clip.mp4.") and temp.name.endswith(".tmp.mp4")
        temp.write_bytes(b"frames")
    assert (tmp_path / "clip.mp4").read_bytes() == b"frames"


def test_threads_writing_at_once_never_see_another_umask(tmp_path):
    # The umask is read once at import; reading it per write (set, then restore) raced.
    expected = 0o666 & ~_umask()  # read here, before the threads: reading it sets it
    errors = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                path = write_atomic(tmp_path / f"{i}_{j}", b"x")
                assert stat.S_IMODE(path.stat().st_mode) == expected
        except AssertionError as exc:  # collected: an assertion in a thread would go unseen
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(list(tmp_path.iterdir())) == 80
