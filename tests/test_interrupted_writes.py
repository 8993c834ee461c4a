"""Issue 32, item 7: a run stopped by SIGTERM or SIGINT while it writes leaves no temporary
file behind, whatever the writer and whichever thread writes; tested with real signals sent
to real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def _wait_for_temporary(folder: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hidden = [p for p in folder.glob(".*")] if folder.is_dir() else []
        if hidden:
            return hidden[0]
        assert proc.poll() is None, f"the run ended before it was stopped: {proc.communicate()[1][-2000:]}"
        time.sleep(0.05)
    raise AssertionError("no temporary file appeared")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_a_geotiff_upscale_stopped_by_a_signal_leaves_no_file(tmp_path, signum, code):
    """The issue's case: `timeout` (SIGTERM) during a GeoTIFF upscale left
    OUT/.NAME_x2.tif.<random>.tif. GDAL writes it from a worker thread of the CLI."""
    pytest.importorskip("rasterio", reason="GeoTIFF needs the geo extra: pip install 'superres[geo]'")
    sys.path.insert(0, str(Path(__file__).parent))
    from scientific_files import write_geotiff

    source = write_geotiff(tmp_path / "scene.tif", height=2048, width=2048, count=1, dtype="uint16", nodata=None, hole=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "superres.cli", "upscale", str(source), "-m", "bicubic", "-s", "2", "-o", str(out)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        temporary = _wait_for_temporary(out, proc)
        assert temporary.name.startswith(".scene_x2.tif.")
        time.sleep(0.3)  # well into the writing
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [], "a file was left behind"


def test_any_writer_in_any_thread_loses_its_temporary_file_on_sigterm(tmp_path):
    """The helper owns the clean-up: a writer of its own (here, one that writes slowly in a
    worker thread while the main thread waits, as the CLI's encoder does) leaves nothing,
    and the process still ends by the signal."""
    script = textwrap.dedent(
        f"""
        import threading, time
        from superres.atomic import atomic_path, remove_on_signals
        remove_on_signals()

        def write():
            with atomic_path({str(tmp_path / "result.bin")!r}, suffix=".bin") as temp:
                with open(temp, "wb") as fh:
                    while True:
                        fh.write(b"x" * 4096)
                        fh.flush()
                        time.sleep(0.01)

        worker = threading.Thread(target=write, daemon=True)
        worker.start()
        worker.join()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        temporary = _wait_for_temporary(tmp_path, proc, timeout=60)
        while temporary.stat().st_size < 8192:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_a_handler_that_was_there_still_runs(tmp_path):
    """Chained, not replaced: a program's own SIGTERM handler runs after the clean-up."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        signal.signal(signal.SIGTERM, lambda *a: (print("own handler", flush=True), sys.exit(3)))
        from superres.atomic import atomic_path
        with atomic_path({str(tmp_path / "x.bin")!r}) as temp:
            temp.write_bytes(b"partial")
            os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout.strip() == "own handler", done.stderr
    assert list(tmp_path.iterdir()) == []
