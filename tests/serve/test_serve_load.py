"""A burst of 50 concurrent requests, a quarter of them malformed, at a real server (uvicorn in
a child process on 127.0.0.1): every valid request succeeds or gets 503, every malformed one
gets its 4xx, the server's memory stays bounded, and it is healthy afterwards.

The memory bound, and why it holds: after a warm-up request (model loaded, allocator and
thread pools initialised) the server's RSS is the baseline. During the burst it holds at most
``workers + queue_size`` = 5 admitted jobs (a 128x128 input each, ~50 KB, and one 512x512
result being made, a few MB in float32), ``_DECODE_SLOTS`` = 2 images being decoded, and the
uploads themselves: each under ``max_upload_bytes`` = 1 MiB, and Starlette keeps up to 1 MB of
each in memory before spilling to disk, so 50 x 1 MiB at worst. That is under 100 MiB of
growth; 200 MiB leaves room for allocator slack. A server that decoded every upload at once,
or queued without bound, would grow with the number of requests instead.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time

import httpx
import psutil
import pytest
from PIL import Image

from serving import image_bytes, subprocess_server

pytestmark = pytest.mark.slow

SETTINGS = {"workers": 1, "queue_size": 4, "max_upload_bytes": 1 << 20, "max_input_pixels": 256 * 256}
GROWTH_LIMIT = 200 << 20
VALID = image_bytes(128, 128)


def flat_png(width: int, height: int) -> bytes:
    """Many pixels in few bytes: what a decompression bomb looks like, from its header."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, "PNG")
    return buffer.getvalue()


class PeakRSS(threading.Thread):
    """Samples a process's resident memory every 10 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)


async def upscale(client: httpx.AsyncClient, image: bytes, **form) -> httpx.Response:
    return await client.post("/v1/upscale", files={"image": ("x.png", image, "image/png")}, data=form)


async def huge_declared_body(port: int) -> int:
    """Declare a 1 TB body and send none of it: the answer must come from the header alone."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/upscale HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000000\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    return int(status_line.split()[1])


async def burst(base_url: str, port: int):
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        valid = [upscale(client, VALID, model="bicubic", scale="4") for _ in range(36)]
        malformed = {
            "not an image": [upscale(client, b"GIF89a, or so it says", model="bicubic", scale="4") for _ in range(3)],
            "unknown model": [upscale(client, VALID, model="../../etc/passwd", scale="4") for _ in range(3)],
            "bad scale": [upscale(client, VALID, model="bicubic", scale="0.5") for _ in range(2)],  # x7 is valid since issue 15
            "too many pixels": [upscale(client, flat_png(3000, 3000), model="bicubic", scale="2") for _ in range(3)],
            "huge declared size": [huge_declared_body(port) for _ in range(3)],
        }
        kinds = [kind for kind, calls in malformed.items() for _ in calls]
        calls = valid + [c for calls in malformed.values() for c in calls]
        assert len(calls) == 50
        results = await asyncio.gather(*calls)
    return results[: len(valid)], list(zip(kinds, results[len(valid) :]))


def test_fifty_concurrent_requests_with_malformed_ones():
    with subprocess_server(SETTINGS) as (proc, base_url):
        port = int(base_url.rsplit(":", 1)[1])
        warm = httpx.post(base_url + "/v1/upscale", files={"image": ("x.png", VALID)}, data={"model": "bicubic", "scale": "4"})
        assert warm.status_code == 200, warm.text
        monitor = PeakRSS(proc.pid)
        baseline = monitor.peak
        monitor.start()
        started = time.monotonic()
        try:
            valid, malformed = asyncio.run(burst(base_url, port))
        finally:
            monitor.done.set()
            monitor.join()
        elapsed = time.monotonic() - started
        health = httpx.get(base_url + "/healthz").json()

    statuses = [r.status_code for r in valid]
    assert set(statuses) <= {200, 503}, [r.text for r in valid if r.status_code not in (200, 503)]
    assert statuses.count(200) >= 5, statuses  # at least a queue's worth got through
    for response in valid:
        if response.status_code == 200:
            assert Image.open(io.BytesIO(response.content)).size == (512, 512)
        else:
            assert response.json()["error"].startswith("server busy")

    expected = {"not an image": 400, "unknown model": 422, "bad scale": 422, "too many pixels": 413, "huge declared size": 413}
    for kind, result in malformed:
        status = result if isinstance(result, int) else result.status_code
        assert status == expected[kind], (kind, result if isinstance(result, int) else result.text)

    growth = monitor.peak - baseline
    assert growth < GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.0f} MiB (baseline {baseline / 2**20:.0f} MiB)"
    assert health["queue"]["running"] == health["queue"]["waiting"] == 0
    print(
        f"\n50 requests in {elapsed:.1f} s: {statuses.count(200)} upscaled, {statuses.count(503)} busy; "
        f"RSS {baseline / 2**20:.0f} MiB -> peak {monitor.peak / 2**20:.0f} MiB"
    )
