"""Issue 32, item 8: a job that starts its own local Ray instance leaves no process behind,
whether it ends, is stopped by SIGTERM or its driver is killed (the next job ends what the
killed one left); and a replica killed mid-job (not the driver) is restarted by Ray, its batch
run again, and the job finishes with every image done exactly once. Real Ray, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray", reason="the Ray engine's tests need the 'ray' extra: pip install 'superres[ray]'")
psutil = pytest.importorskip("psutil")

SRC = str(Path(__file__).resolve().parents[2] / "src")
SESSIONS = Path("/tmp")


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": SRC}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):  # a local instance of its own
        env.pop(key, None)
    return env


def _photos(folder: Path, count: int, size=(96, 72)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(8)
    paths = []
    for i in range(count):
        path = folder / f"p{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _start(tmp_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "superres.cli", "upscale", str(tmp_path / "in"), "-o", str(out), "--engine", "ray",
         "--skip-existing", "--manifest", str(tmp_path / "manifest.jsonl"), *extra],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _session_of(pid: int, timeout: float = 300) -> Path:
    """The session folder of the local instance that driver ``pid`` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for folder in SESSIONS.glob("superres-rayjob-*"):
            try:
                if int((folder / "driver.pid").read_text().split()[0]) == pid:
                    return folder
            except (OSError, ValueError):
                continue
        time.sleep(0.1)
    folders = {f.name: (f / "driver.pid").read_text() if (f / "driver.pid").exists() else None for f in SESSIONS.glob("superres-rayjob-*")}
    raise AssertionError(f"driver {pid} started no local instance ({folders})")


def _processes_naming(folder: Path) -> list:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(folder) in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _wait_for_outputs(out: Path, count: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not out.is_dir() or len([p for p in out.iterdir() if not p.name.startswith(".")]) < count:
        assert proc.poll() is None, f"the job ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no outputs"
        time.sleep(0.05)


def _rows(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_a_local_instance_leaves_no_process_when_killed_stopped_or_done(tmp_path):
    photos = _photos(tmp_path / "in", 24)
    out = tmp_path / "out"
    options = ("-m", "bicubic", "-s", "2")

    killed = _start(tmp_path, out, *options)
    killed_session = _session_of(killed.pid)
    _wait_for_outputs(out, 1, killed)
    killed.send_signal(signal.SIGKILL)  # for real: nothing of the driver runs
    killed.wait()

    stopped = _start(tmp_path, out, *options)
    stopped_session = _session_of(stopped.pid)
    _wait_for_outputs(out, len(list(out.iterdir())) + 1, stopped)
    stopped.send_signal(signal.SIGTERM)  # as `timeout` sends it
    stopped.communicate(timeout=120)
    assert stopped.returncode != 0
    assert _processes_naming(stopped_session) == [] and not stopped_session.exists()

    # A job with work left starts its own instance; one whose work the stopped job finished
    # before its SIGTERM landed (a race on a busy machine) starts none.
    left = len(photos) - len([p for p in out.iterdir() if not p.name.startswith(".")])
    finished = _start(tmp_path, out, *options)
    sessions = [killed_session, stopped_session] + ([_session_of(finished.pid)] if left else [])
    _, stderr = finished.communicate(timeout=900)
    assert finished.returncode == 0, stderr[-2000:]
    # The killed driver's instance was ended by a later job, each other by itself: nothing is left.
    for session in sessions:
        assert _processes_naming(session) == [], session
        assert not session.exists()
    done = [row["input"] for row in _rows(tmp_path) if row["status"] == "done"]
    assert len(done) == len(set(done))
    # Every output, and nothing else: no temporary file of a replica killed with its driver.
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}_x2.png" for p in photos)


def test_a_killed_replica_is_restarted_and_every_image_is_done_once(tmp_path):
    """Kill one replica (SIGKILL, not the driver) while it works: Ray restarts it and runs
    its batch again (max_restarts, max_task_retries: ours); the job ends well, with one
    manifest row per image and every output complete."""
    photos = _photos(tmp_path / "in", 32, size=(160, 120))
    out = tmp_path / "out"
    job = _start(tmp_path, out, "-m", "swiftrep", "-s", "4", "--precision", "fp32", "--replicas", "2")
    session = _session_of(job.pid)
    _wait_for_outputs(out, 2, job)
    replicas = [p for p in _processes_naming(session) if "raylet" in " ".join(p.cmdline())]
    assert replicas, "no raylet"
    workers = [c for c in replicas[0].children() if "Replica" in " ".join(c.cmdline()) or "MapWorker" in " ".join(c.cmdline())]
    assert workers, [" ".join(c.cmdline())[:80] for c in replicas[0].children()]
    workers[0].send_signal(signal.SIGKILL)
    _, stderr = job.communicate(timeout=900)
    assert job.returncode == 0, stderr[-3000:]
    assert "32 done, 0 skipped, 0 failed" in stderr
    rows = _rows(tmp_path)
    assert sorted(Path(row["input"]).name for row in rows) == sorted(p.name for p in photos)  # each once
    assert all(row["status"] == "done" for row in rows)
    for photo in photos:
        with Image.open(out / f"{photo.stem}_x4.png") as result:
            assert result.size == (640, 480)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}_x4.png" for p in photos)
    assert _processes_naming(session) == [] and not session.exists()
