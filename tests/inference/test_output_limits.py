"""Issue 32, item 2: an output too large for memory is refused before any work, in one line,
by the CLI, the API and Python alike; a result no larger than the input is refused whether
it is asked as a scale or as a size; and an upscale's real peak stays under its plan."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.errors import SuperresError
from superres.imaging import ImageData
from superres.inference import load
from superres.inference.sizing import OutputSize, OutputTooLarge, output_memory

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _photo(path: Path, width: int, height: int) -> Path:
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_the_issue_commands_are_refused_in_one_line_before_any_work(tmp_path):
    """The three commands of the issue, each of which the OOM killer ended at 24 GB: run with
    the address space capped at 6 GB, so that a regression fails here instead of eating the
    machine; each must end at once with one line naming the size and the limit."""
    small, big = _photo(tmp_path / "small.png", 48, 64), _photo(tmp_path / "big.png", 2000, 2000)
    script = textwrap.dedent(
        f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        from superres.cli import main
        for argv in (
            ["upscale", {str(small)!r}, "--size", "65536x65536", "-o", {str(tmp_path / "a")!r}],
            ["upscale", {str(small)!r}, "--size", "65536x65536", "--fit", "stretch", "-m", "bicubic", "-o", {str(tmp_path / "b")!r}],
            ["upscale", {str(big)!r}, "-s", "64", "-m", "bicubic", "-o", {str(tmp_path / "c")!r}],
        ):
            start = time.perf_counter()
            code = main(argv)
            print(f"exit {{code}} in {{time.perf_counter() - start:.1f}} s", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC, "SUPERRES_MEMORY_LIMIT": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    exits = [line for line in done.stdout.splitlines() if line.startswith("exit")]
    assert len(exits) == 3 and all(line.startswith("exit 1 ") for line in exits), done.stdout
    assert all(float(line.split()[3]) < 60 for line in exits), exits  # refused, not computed for a minute
    failures = [line for line in done.stderr.splitlines() if line.startswith("superres: failed")]
    assert len(failures) == 3, done.stderr
    assert "65536x65536" in failures[0] and "65536x65536" in failures[1] and "128000x128000" in failures[2]
    assert all("over the limit of" in line for line in failures)
    assert "small.png" in failures[0] and "small.png" in failures[1] and "big.png" in failures[2]
    assert "Traceback" not in done.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*") if p.parent != tmp_path)


def test_a_size_no_larger_than_the_input_is_refused_like_scale_1(tmp_path, capsys):
    """--size 1x1 (a downscale) and -s 1.0 used to disagree: both are refused now."""
    small = _photo(tmp_path / "small.png", 48, 64)
    assert main(["upscale", str(small), "--size", "1x1", "-m", "bicubic", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "1x1 would make this 48x64 image 1x1, no larger" in err and "superres only enlarges" in err
    with pytest.raises(SystemExit):
        main(["upscale", str(small), "-s", "1.0", "-m", "bicubic"])
    assert "must be above 1" in capsys.readouterr().err
    with pytest.raises(SuperresError, match="no larger"):
        OutputSize(width=48, height=64).plan(64, 48)  # the same size is not an enlargement either
    assert OutputSize(width=49, height=64, fit="stretch").plan(64, 48).size == (64, 49)  # one side larger: taken


def test_python_refuses_what_is_over_the_memory_budget(monkeypatch):
    up = load("bicubic", width=65536, height=65536, device="cpu")
    pixels = np.zeros((64, 48, 3), np.uint8)
    start = time.perf_counter()
    with pytest.raises(OutputTooLarge, match=r"65536x65536 \(4,295 MP\), needing about .* over the limit of"):
        up.upscale(pixels)
    with pytest.raises(OutputTooLarge):
        up.upscale_image_data(ImageData(pixels=pixels))
    assert time.perf_counter() - start < 5
    # A budget set outright (a server sharing its machine) is the limit, whatever is free.
    monkeypatch.setenv("SUPERRES_MEMORY_LIMIT", "1M")
    with pytest.raises(OutputTooLarge, match=r"over the limit of 1.05 MB"):
        load("bicubic", 4, device="cpu").upscale(np.zeros((64, 64, 3), np.uint8))


def test_frames_count_towards_the_limit(monkeypatch):
    """An animation's frames are all held until it is encoded: 40 frames need 40 results."""
    one = output_memory((256, 256), channels=3, frames=1)
    forty = output_memory((256, 256), channels=3, frames=40)
    assert forty - one == 39 * 256 * 256 * 3
    monkeypatch.setenv("SUPERRES_MEMORY_LIMIT", str((one + forty) // 2))
    up = load("bicubic", 4, device="cpu")
    frame = ImageData(pixels=np.zeros((64, 64, 3), np.uint8))
    up.upscale_image_data(frame)  # one frame fits
    from superres.imaging.pixels import Animation

    animation = Animation(frames=[frame] * 39, durations=[50] * 40)
    with pytest.raises(OutputTooLarge, match="x 40 frames"):
        up.upscale_image_data(ImageData(pixels=frame.pixels, animation=animation))


def test_the_peak_of_an_upscale_stays_under_its_plan(tmp_path):
    """The plan is a bound, measured: a fresh process upscales 800x600 to 6000x4500 (bicubic
    x8, then an antialiased resize down to x7.5) and its peak resident memory grows by less
    than the plan says."""
    script = textwrap.dedent(
        """
        import resource, numpy as np, psutil, superres
        from superres.imaging import ImageData
        up = superres.load("bicubic", 7.5, device="cpu")
        image = ImageData(pixels=np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8))
        up.upscale_image_data(ImageData(pixels=image.pixels[:32, :32].copy()))  # libraries loaded, threads started
        before = psutil.Process().memory_info().rss
        plan = up.check_memory(*image.size)
        out = up.upscale_image_data(image)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(out.size, plan, peak - before)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    size, plan, used = done.stdout.strip().rsplit(" ", 2)
    assert size == "(4500, 6000)"
    assert 0 < int(used) < int(plan), (used, plan)
