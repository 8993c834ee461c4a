"""Small images in parallel lanes (:mod:`superres.inference.lanes`): the same bytes as one
call at a time, in the same order, with PyTorch on one thread only while lanes run."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from superres.imaging.io import ImageData, read_image, write_image
from superres.imaging.pixels import Animation
from superres.inference import Upscaler
from superres.inference.batch import collect_inputs, plan_jobs, run_jobs
from superres.inference.lanes import MAX_LANES, SMALL_INPUT, Lanes
from superres.models import create


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    planes = [np.sin(6 * xx + c + seed) * 0.3 + yy * 0.4 + 0.3 + 0.05 * rng.standard_normal((h, w)) for c in range(3)]
    return (np.clip(np.stack(planes, axis=-1), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=["swiftrep", "espcn"])
def upscaler(request):
    torch.manual_seed(0)
    if request.param == "espcn":  # a luma model: the YCbCr split and bicubic chroma run in the lanes too
        return Upscaler(create("espcn", scale=2, channels=1), scale=2, name="espcn", device="cpu", tile=40)
    return Upscaler(create("swiftrep", scale=2, blocks=2, features=16), scale=2, name="swiftrep", device="cpu", tile=40)


def test_lanes_are_pytorch_threads_on_a_cpu_and_none_elsewhere(upscaler, two_threads):
    assert upscaler.lane_count == 2
    onnx_like = type("U", (), {"device": torch.device("cpu"), "backend": "onnx"})()
    gpu_like = type("U", (), {"device": torch.device("cuda"), "backend": "torch"})()
    assert Upscaler.lane_count.fget(onnx_like) == 1 and Upscaler.lane_count.fget(gpu_like) == 1


def test_small_means_whole_in_one_call_and_at_most_256_squared(upscaler):
    assert upscaler.takes_lane(_photo(30, 40, 0))
    assert not upscaler.takes_lane(_photo(30, 41, 0))  # over the 40 px tile: tiled, so it runs by itself
    wide = Upscaler(upscaler.runner.model, scale=2, name="x", device="cpu", tile=0)
    assert wide.takes_lane(_photo(256, 256, 0)) and not wide.takes_lane(_photo(256, 257, 0))
    assert SMALL_INPUT == 256 * 256
    still = ImageData(pixels=_photo(20, 30, 0))
    animated = ImageData(pixels=still.pixels, animation=Animation(frames=[still], durations=[50, 50]))
    assert upscaler.takes_lane(still) and not upscaler.takes_lane(animated)  # an animation's frames run by themselves
    assert not upscaler.takes_lane("not an image")  # upscale raises for it, by itself


def test_lanes_run_on_one_thread_each_and_solo_calls_on_all(upscaler, two_threads):
    seen = []

    def where(tag):
        seen.append((tag, threading.current_thread().name, torch.get_num_threads()))
        return tag

    with Lanes(upscaler.lane_count) as lanes:
        futures = [lanes.submit(where, "lane") for _ in range(4)]
        solo = lanes.solo(where, "solo")
        assert all(f.done() for f in futures)  # solo waited for the lanes in flight
        futures.append(lanes.submit(where, "lane again"))
    assert [f.result() for f in futures] == ["lane"] * 4 + ["lane again"] and solo.result() == "solo"
    for tag, thread, threads in seen:
        if tag == "solo":
            assert thread == threading.current_thread().name and threads == 2
        else:
            assert thread.startswith("superres-lane") and threads == 1
    assert torch.get_num_threads() == 2  # back on leaving


def test_a_failure_comes_back_through_its_own_future(upscaler, two_threads):
    def boom():
        raise ValueError("this one")

    with Lanes(upscaler.lane_count) as lanes:
        bad, good = lanes.submit(boom), lanes.submit(lambda: 7)
        solo_bad = lanes.solo(boom)
    with pytest.raises(ValueError, match="this one"):
        bad.result()
    with pytest.raises(ValueError, match="this one"):
        solo_bad.result()
    assert good.result() == 7


def test_upscale_many_gives_upscale_bytes_in_order(upscaler, two_threads):
    # Small ones (lanes), a tiled one (by itself), PIL and float inputs, an animation-free ImageData.
    images = [_photo(20, 30, 0), _photo(30, 20, 1), _photo(60, 70, 2), _photo(20, 30, 3)]
    images += [ImageData(pixels=_photo(16, 16, 4)), _photo(24, 24, 5).astype(np.float32) / 255]
    torch.set_num_threads(1)
    expected = [upscaler.upscale(im) for im in images]  # one call at a time, on one thread
    torch.set_num_threads(2)
    got = list(upscaler.upscale_many(iter(images)))
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        e, g = (e.pixels, g.pixels) if isinstance(e, ImageData) else (e, g)
        assert e.dtype == g.dtype and np.array_equal(e, g)
    assert torch.get_num_threads() == 2


def test_upscale_many_raises_at_the_bad_image_after_yielding_the_ones_before(upscaler, two_threads):
    results = upscaler.upscale_many([_photo(10, 10, 0), "not an image", _photo(10, 10, 1)])
    assert next(results).shape == (20, 20, 3)
    with pytest.raises(TypeError, match="cannot upscale a str"):
        next(results)
    assert torch.get_num_threads() == 2


def test_a_folder_in_lanes_writes_the_bytes_of_one_call_at_a_time(upscaler, two_threads, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(7):
        h, w = (20, 30) if i % 3 else (50, 60)  # every third one tiled, so lanes and solo calls alternate
        write_image(src / f"{i}.png", ImageData(pixels=_photo(h, w, i)))
    (src / "bad.png").write_bytes(b"not a png")
    inputs, errors = collect_inputs([str(src)])
    jobs, errors2 = plan_jobs(inputs, suffix="_x2", output_dir=out)
    assert not errors and not errors2
    lines = []
    failures = run_jobs(upscaler, jobs, progress=False, log=lines.append)
    assert len(failures) == 1 and "bad.png" in failures[0]
    assert [line.split()[1] for line in lines] == [str(j.output) for j in jobs if "bad" not in j.source.name]  # in order
    torch.set_num_threads(1)
    for job in jobs:
        if "bad" not in job.source.name:
            assert np.array_equal(read_image(job.output).pixels, upscaler.upscale(read_image(job.source).pixels))
    assert torch.get_num_threads() == 1


def test_without_lanes_everything_runs_in_the_callers_thread(upscaler):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no lanes (as on a GPU or with ONNX Runtime)
    try:
        seen = []
        with Lanes(upscaler.lane_count) as lanes:
            assert lanes.count == 1
            future = lanes.submit(lambda: seen.append(threading.current_thread().name) or 5)
            assert future.done() and future.result() == 5 and seen == [threading.current_thread().name]
        images = [_photo(20, 30, 0), _photo(30, 20, 1)]
        assert all(np.array_equal(a, b) for a, b in zip(upscaler.upscale_many(images), [upscaler.upscale(i) for i in images]))
    finally:
        torch.set_num_threads(before)


def test_past_max_lanes_the_threads_are_shared_out(upscaler):
    before = torch.get_num_threads()
    torch.set_num_threads(4 * MAX_LANES)
    try:
        with Lanes(upscaler.lane_count) as lanes:
            assert lanes.count == MAX_LANES
            assert lanes.submit(torch.get_num_threads).result() == 4
        assert torch.get_num_threads() == 4 * MAX_LANES
    finally:
        torch.set_num_threads(before)
