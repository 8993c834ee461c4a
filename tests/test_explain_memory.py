"""Issue 32, item 3: an explanation's peak memory is planned before the model runs, a plan
over the limit is refused in one line (CLI, API, Python), a planned one stays under its
plan, and the web app stops an explanation whose client left or whose server is stopping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from superres.attribution import EXPLAIN_MEMORY_CAP, ExplainError, explain

sys.path.insert(0, str(Path(__file__).parent / "serve"))
from serving import image_bytes, subprocess_server  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _photo(path: Path, side: int) -> Path:
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def test_a_whole_image_explain_of_a_2000px_photo_is_refused_before_any_work(tmp_path):
    """The issue's command, OOM-killed at 24 GB before: capped at 6 GB of address space here,
    it must end at once with one line naming the window, the memory and the limit."""
    big = _photo(tmp_path / "big.png", 2000)
    script = textwrap.dedent(
        f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        from superres.cli import main
        start = time.perf_counter()
        code = main(["explain", {str(big)!r}, "--box", "0,0,8000,8000", "-m", "swiftrep", "-s", "4", "-o", {str(tmp_path / "out")!r}])
        print(f"exit {{code}} in {{time.perf_counter() - start:.1f}} s")
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC, "SUPERRES_MEMORY_LIMIT": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    code, seconds = done.stdout.split()[1], float(done.stdout.split()[3])
    assert code == "1" and seconds < 60, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("superres: error: explaining box 0,0,8000,8000"), done.stderr
    assert "input window of 2000x2000 px" in lines[0] and "over the limit of" in lines[0] and "smaller box" in lines[0]
    assert not (tmp_path / "out").exists()


def test_python_refuses_over_a_given_limit_and_the_default_is_capped():
    image = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(ExplainError, match=r"input window of 300x300 px, about .* over the limit of 10 MB"):
        explain("swiftrep", image, (0, 0, 1200, 1200), scale=4, memory_limit=10_000_000)
    # A small box near the middle needs only its receptive window: far under the same limit.
    result = explain("swiftrep", image, (600, 600, 8, 8), scale=4, steps=2, memory_limit=200_000_000)
    assert result.region != (0, 0, 300, 300)
    assert EXPLAIN_MEMORY_CAP == 2 << 30


def test_a_planned_whole_image_explain_stays_under_its_plan():
    """Measured in a fresh process: a whole-image box of a 256x256 image through SwiftRep x4
    (with gradients over all of it) peaks below what the plan said, and the plan is what
    explain checks against its limit."""
    script = textwrap.dedent(
        """
        import numpy as np, torch
        torch.set_num_threads(1)
        from superres.attribution import _colour_forward, explain, plan_memory
        from superres.models.contract import input_channels
        from superres.inference.onnx import prepare_for_inference
        from superres.models import load_for_scale
        net = prepare_for_inference(load_for_scale("swiftrep", 4))
        image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        explain(net, image[:24, :24], (0, 0, 96, 96), steps=2)  # libraries loaded
        plan = plan_memory(_colour_forward(net, input_channels(net)), 3, (256, 256), (0, 0, 256, 256), 1, torch.device("cpu"))
        # The explanation's own memory: anonymous pages (what allocations take, and what runs a
        # machine out of memory), sampled every few milliseconds while it runs; mapped library
        # files paged in on first use are not its plan's business.
        import threading, time
        def anonymous():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))
        before, samples, running = anonymous(), [], True
        def sample():
            while running:
                samples.append(anonymous())
                time.sleep(0.002)
        sampler = threading.Thread(target=sample)
        sampler.start()
        result = explain(net, image, (0, 0, 1024, 1024), steps=2, memory_limit=plan)
        running = False
        sampler.join()
        peak = max(samples + [anonymous()])
        print(result.region, plan, peak - before)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    *region, plan, used = done.stdout.replace("(", "").replace(")", "").replace(",", "").split()
    assert region == ["0", "0", "256", "256"]
    assert 0 < int(used) < int(plan), (used, plan)


@pytest.mark.anyio
async def test_the_api_refuses_a_whole_box_of_a_1000px_image():
    """The issue's request grew the server from 617 MB to 7.7 GB; now a 422 at once."""
    from superres.serve import Settings, create_app

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as client:
            files = {"image": ("big.png", image_bytes(1000, 1000), "image/png")}
            start = time.perf_counter()
            response = await client.post("/v1/explain", files=files, data={"box": "0,0,4000,4000", "model": "swiftrep", "scale": "4"})
    assert response.status_code == 422, response.text
    assert "over the limit of" in response.json()["error"] and time.perf_counter() - start < 60


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _running(base_url: str) -> int:
    return httpx.get(f"{base_url}/healthz", timeout=10).json()["queue"]["running"]


def _wait(condition, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.2)
    return time.monotonic() - start


def test_the_server_stops_an_explanation_whose_client_left_and_shuts_down_promptly():
    """A real uvicorn server in its own process. A 100-step explanation of a whole 256x256
    image takes minutes on this machine: the client that gives up after a second frees the
    worker within seconds, and SIGTERM during a second one ends the server within seconds."""
    form = {"box": "0,0,1024,1024", "model": "swiftrep", "scale": "4", "steps": "100"}
    files = {"image": ("photo.png", image_bytes(256, 256), "image/png")}
    with subprocess_server({}) as (proc, base_url):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base_url}/v1/explain", files=files, data=form, timeout=httpx.Timeout(60, read=3))
        assert _wait(lambda: _running(base_url) == 0, timeout=30) < 30  # the job stopped, not ran for minutes

        def post_and_forget() -> None:
            try:
                httpx.post(f"{base_url}/v1/explain", files=files, data=form, timeout=300)
            except httpx.HTTPError:
                pass  # the server went away: what this test does to it

        threading.Thread(target=post_and_forget, daemon=True).start()
        _wait(lambda: _running(base_url) == 1, timeout=60)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert time.monotonic() - start < 20
