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

import superres


def image_bytes(width: int = 32, height: int = 32, mode: str = "RGB", fmt: str = "PNG", seed: int = 0) -> bytes:
    """A small noisy image (noise, so that every format keeps its size honest)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(buffer, fmt)
    return buffer.getvalue()


def write_espcn_checkpoint(folder: Path, scale: int = 2, quality: dict | None = None) -> Path:
    """An ESPCN with random weights, saved where a ``weights_dirs`` folder is looked at."""
    from superres.models import create, save

    metadata = {"quality": quality} if quality is not None else None
    path = folder / f"espcn_x{scale}.safetensors"
    return save(create("espcn", scale=scale), path, arch="espcn", scale=scale, hyperparameters={}, metadata=metadata)


class _InterimUpscaler:
    """Stands in for the inference layer's Upscaler until ``superres.load`` exists (whole image,
    no tiling; alpha enlarged by repetition). Only the app's plumbing is under test here."""

    def __init__(self, reference: str, scale: int) -> None:
        from superres.models import load_for_scale

        self.net = load_for_scale(reference, scale)
        self.scale = scale

    def upscale_image_data(self, image, *, progress=False):
        import torch

        from superres.imaging.io import ImageData, from_float, to_float

        x = torch.from_numpy(to_float(image.pixels)).permute(2, 0, 1)[None]
        grey = x.shape[1] == 1
        with torch.no_grad():
            y = self.net(x.repeat(1, 3, 1, 1) if grey else x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        pixels = from_float(y[..., :1] if grey else y, image.pixels.dtype)
        alpha = None if image.alpha is None else image.alpha.repeat(self.scale, 0).repeat(self.scale, 1)
        return ImageData(pixels, alpha, image.icc_profile, image.exif, image.format)


def _interim_load(reference: str, *, scale: int, device: str = "cpu", tile=None):
    return _InterimUpscaler(reference, scale)


def loader():
    """``superres.load`` (what the app uses by default), or a stand-in while it does not exist."""
    return getattr(superres, "load", None) or _interim_load


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
    import uvicorn

    from superres.serve import Settings, create_app, run

    settings = Settings(**json.loads(sys.argv[1]))
    if hasattr(superres, "load"):
        run(settings, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        uvicorn.run(create_app(settings, loader=loader()), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
