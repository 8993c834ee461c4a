"""``superres upscale --engine ray`` on a real Ray cluster that this module starts itself
(``ray start --head`` in a subprocess, 2 CPUs, stopped at the end): a job whose driver is
killed at about half and rerun with --skip-existing ends with every image done exactly once,
with the single-process path's bytes, and a corrupt file as a failed manifest row with a
non-zero exit; lists of paths and the manifest's own rules without a cluster."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.inference.batch import JobResult, Manifest, expand_path_lists, read_manifest

pytest.importorskip("ray", reason="the Ray engine's tests need the 'ray' extra: pip install 'superres[ray]'")
pytest.importorskip("pyarrow", reason="the Ray engine's tests need the 'ray' extra: pip install 'superres[ray]'")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a 2-CPU Ray head started for this module, with its own token (Ray
    2.59+ authenticates local clusters; every driver here is given the same one)."""
    folder = tmp_path_factory.mktemp("ray")
    env_before = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    os.environ.pop("RAY_ADDRESS", None)
    port = _free_port()
    ray = Path(sys.executable).with_name("ray")
    # A short session folder: Ray's socket paths must stay under 108 characters.
    temp_dir = Path("/tmp") / f"superres-ray-{os.getpid()}"
    head = subprocess.Popen(
        [str(ray) if ray.exists() else "ray", "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0", f"--port={port}",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env={**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")},  # the replicas import this superres
        stdout=open(folder / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while "--block" not in (folder / "head.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not start: {(folder / 'head.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield address
    finally:
        head.terminate()  # ray start --block stops the cluster's processes when it is told to stop
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # its own session: only the cluster's processes
            head.wait()
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def _photos(folder: Path, count: int, size=(40, 32)) -> list[Path]:
    """Small PNGs with structure (gradients and shapes, noise), so the model's output varies."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    paths = []
    for i in range(count):
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        base = np.stack([(x * (3 + i)) % 256, (y * 5 + i * 20) % 256, ((x + y) * 2) % 256], axis=2)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _cli(*arguments: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "superres.cli", "upscale", *arguments], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_killed_at_half_and_rerun_does_every_image_once_with_the_same_bytes(cluster, tmp_path, capsys):
    """One job through the whole story (each driver run costs seconds of start-up on 2 CPUs):
    killed at about half, rerun with --skip-existing; a corrupt file fails in both runs
    without stopping them; the outputs have the single-process path's bytes."""
    photos = _photos(tmp_path / "in", 60, size=(64, 48))  # 8 replica calls of 8: killed with 4 to go
    (tmp_path / "in" / "broken.png").write_bytes(b"<html>not a picture</html>")
    out, manifest = tmp_path / "out", tmp_path / "manifest.jsonl"
    # --precision fp32: "auto" is decided per process by a timed bf16 probe, which may
    # answer differently in the test process and in the drivers on a busy machine.
    arguments = [f"file://{tmp_path / 'in'}", "-o", str(out), "-m", "swiftrep", "--precision", "fp32", "--engine", "ray",
                 "--ray-address", cluster, "--manifest", str(manifest), "--skip-existing"]

    # Each driver runs in its own process, as a user's would (and Ray reads its
    # authentication settings once per process).
    first = _cli(*arguments)
    try:
        # Generous: on a loaded shared machine a driver's start-up alone can take minutes.
        deadline = time.monotonic() + 600
        while not manifest.exists() or len(read_manifest(manifest)) < len(photos) // 2:
            assert first.poll() is None, f"the run ended before it was killed: {first.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no progress in the manifest"
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)  # the driver, for real: no handler runs
        first.wait()
    # The cluster ends the dead driver's replica; wait until nothing more appears.
    written: set[str] = set()
    while (now := {p.name for p in out.iterdir() if not p.name.startswith(".")}) != written:
        written = now
        time.sleep(2)
    first_rows = read_manifest(manifest)
    first_done = [row["input"] for row in first_rows if row["status"] == "done"]
    assert len(first_done) == len(set(first_done)) and 0 < len(written) < len(photos), (len(written), len(first_done))
    assert {Path(row["output"]).name for row in first_rows if row["status"] == "done"} <= written

    second = _cli(*arguments)
    try:
        stdout, stderr = second.communicate(timeout=900)
    finally:
        second.kill()
    assert second.returncode == 1, stderr[-2000:]  # the corrupt file, again
    rows = read_manifest(manifest)
    rerun = rows[len(first_rows):]
    skipped = {Path(r["output"]).name for r in rerun if r["status"] == "skipped"}
    redone = {Path(r["output"]).name for r in rerun if r["status"] == "done"}
    every = {f"{p.stem}_x4.png" for p in photos}
    # What the killed run wrote is skipped, never redone; the rest is done once, now.
    assert skipped == written and redone == every - written and not skipped & redone
    assert f"{len(redone)} done, {len(skipped)} skipped, 1 failed" in stderr and "superres: failed cannot read" in stderr
    failed = [r for r in rerun if r["status"] == "failed"]
    assert [Path(r["input"]).name for r in failed] == ["broken.png"] and "not an image" in failed[0]["error"]
    done_rows = [r["input"] for r in rows if r["status"] == "done"]
    assert len(done_rows) == len(set(done_rows))
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == every
    for name in sorted(redone)[:3]:
        assert f"wrote {out / name} (64x48 -> 256x192" in stdout

    # The single-process path, on a list of some of the files (a .txt list), writes the same bytes.
    sample = photos[:: len(photos) // 6]
    (tmp_path / "some.txt").write_text("".join(f"in/{p.name}\n" for p in sample))
    assert main(["upscale", str(tmp_path / "some.txt"), "-o", str(tmp_path / "single"), "-m", "swiftrep", "--precision", "fp32"]) == 0
    capsys.readouterr()
    for photo in sample:
        name = f"{photo.stem}_x4.png"
        assert (out / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name


def test_lists_of_paths_text_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "some.txt").write_text("# two photos\na.png\n\n/data/b.png\ns3://bucket/c.png\n")
    pq.write_table(pa.table({"path": ["x.png", "gs://bucket/y.png"], "size": [1, 2]}), tmp_path / "lists" / "more.parquet")
    arguments, errors = expand_path_lists([str(tmp_path / "lists" / "some.txt"), str(tmp_path / "lists" / "more.parquet"), "d.png"])
    base = str(tmp_path / "lists")
    assert arguments == [f"{base}/a.png", "/data/b.png", "s3://bucket/c.png", f"{base}/x.png", "gs://bucket/y.png", "d.png"]
    assert errors == []
    pq.write_table(pa.table({"a": ["x"], "b": ["y"]}), tmp_path / "bad.parquet")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    _, errors = expand_path_lists([str(tmp_path / "bad.parquet"), str(tmp_path / "empty.txt")])
    assert "no 'path' column" in errors[0] and "the list of paths is empty" in errors[1]


def test_manifest_drops_a_torn_last_line_and_appends(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"input": "a", "status": "done"}) + "\n" + '{"input": "b", "sta')
    with Manifest(path) as manifest:
        manifest.write(JobResult("c", "c_x4.png", "failed", "broken", 0.5))
    rows = read_manifest(path)
    assert [r["input"] for r in rows] == ["a", "c"] and rows[1]["error"] == "broken"


def test_a_replica_writes_cloud_optimised_geotiffs_with_cog(tmp_path):
    """--cog reaches the replicas (it was dropped on the way: --engine ray wrote plain GeoTIFFs)."""
    rasterio = pytest.importorskip("rasterio", reason="GeoTIFF needs the geo extra: pip install 'superres[geo]'")
    import superres
    from scientific_files import write_geotiff
    from superres.inference.ray_batch import _run_rows

    source = write_geotiff(tmp_path / "rgb.tif", height=300, width=270, count=4, dtype="uint8", nodata=None, rgb=True)
    [result] = _run_rows(superres.load("bicubic", 2, threads=1), [(str(source), str(tmp_path / "rgb_x2.tif"))], 95, cog=True)
    assert result.status == "done", result.error
    with rasterio.open(tmp_path / "rgb_x2.tif") as b:
        assert b.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
