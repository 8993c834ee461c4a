"""Helpers for the web-app tests: small images, a random-weight checkpoint and real servers.

Run as a script (``python serving.py SETTINGS_JSON PORT``) it serves the app under uvicorn,
which is how the load test gets a server in its own process.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def image_bytes(width: int = 32, height: int = 32, mode: str = "RGB", fmt: str = "PNG", seed: int = 0) -> bytes:
    """A small noisy image (noise, so that every format keeps its size honest)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(buffer, fmt)
    return buffer.getvalue()


def write_test_checkpoint(folder: Path, scale: int = 2, quality: dict | None = None) -> Path:
    """An FSRCNN-s (no shipped weights) with random weights, saved where a ``weights_dirs`` folder is looked at."""
    from superres.models import create, save

    metadata = {"quality": quality} if quality is not None else None
    path = folder / f"fsrcnn-s_x{scale}.safetensors"
    return save(create("fsrcnn-s", scale=scale), path, arch="fsrcnn-s", scale=scale, hyperparameters={}, metadata=metadata)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base_url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} did not come up within {timeout} s")


@contextlib.contextmanager
def thread_server(app):
    """uvicorn serving ``app`` on 127.0.0.1 in a thread of this process; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so the port cannot be taken between choice and use
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def subprocess_server(settings: dict):
    """The app under uvicorn in a child process; yields (Popen, base URL). Stopped on exit."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, json.dumps(settings), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, proc=proc)
        yield proc, base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    from superres.serve import Settings, run

    run(Settings(**json.loads(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")


@contextlib.asynccontextmanager
async def in_process_client(settings=None):
    """An httpx client over ASGI to the app ``settings`` make (default settings when None),
    with its lifespan run: the web app in this process, without a server."""
    from superres.serve import Settings, create_app

    app = create_app(settings or Settings())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as client:
            yield client
