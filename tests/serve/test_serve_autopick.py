"""POST /v1/upscale with model=auto: the server reads the upload, chooses the fidelity model as
``superres.load("auto")`` does, runs it, and names it and the reason in the response headers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.imaging.color import modcrop
from superres.imaging.io import read_image
from superres.imaging.resize import imresize
from serving import in_process_client
from superres.serve import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _upload(pixels: np.ndarray, fmt: str, **save) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save)
    return (f"photo.{fmt.lower()}", buffer.getvalue(), f"image/{fmt.lower()}")


async def test_auto_picks_per_upload_and_says_which_and_why(set5):
    lr = imresize(modcrop(read_image(set5 / "bird.png").pixels, 4), 1 / 4)
    async with in_process_client(Settings(device="cpu")) as client:
        models = (await client.get("/v1/models")).json()
        auto = next(m for m in models["models"] if m["name"] == "auto")
        assert [s["scale"] for s in auto["scales"]] == [2, 3, 4] and "swiftrep-light" in auto["paper"]

        jpeg = await client.post("/v1/upscale", files={"image": _upload(lr, "JPEG", quality=40)}, data={"model": "auto", "scale": "4"})
        assert jpeg.status_code == 200, jpeg.text
        assert jpeg.headers["x-superres-model"] == "swiftrep-light"
        assert jpeg.headers["x-superres-auto"] == "JPEG quality 40, below 85"
        assert Image.open(io.BytesIO(jpeg.content)).size == (288, 288)

        png = await client.post("/v1/upscale", files={"image": _upload(lr, "PNG")}, data={"model": "auto", "scale": "4"})
        assert png.headers["x-superres-model"] == "swiftrep" and png.headers["x-superres-auto"].startswith("clean:")

        # x2: the light model has no x2, so a JPEG goes to the real-world model, and the header says why.
        half = await client.post("/v1/upscale", files={"image": _upload(lr, "JPEG", quality=40)}, data={"model": "auto", "scale": "2"})
        assert half.headers["x-superres-model"] == "swiftrep-real" and half.headers["x-superres-auto"].endswith("has no x2")

        # A chosen model is never asked for a perceptual blend.
        refused = await client.post("/v1/upscale", files={"image": _upload(lr, "PNG")}, data={"model": "auto", "strength": "0.5"})
        assert refused.status_code == 422 and "no strength" in refused.json()["error"]

        # Any other model is run as asked, with no auto header.
        plain = await client.post("/v1/upscale", files={"image": _upload(lr, "JPEG", quality=40)}, data={"model": "swiftrep", "scale": "4"})
        assert plain.headers["x-superres-model"] == "swiftrep" and "x-superres-auto" not in plain.headers


async def test_explain_with_the_default_model_explains_the_flagship():
    # The page's default is auto; an explanation asked with no model explains the model auto
    # stands on (it was a 422, "unknown model 'auto'").
    lr = (np.random.default_rng(3).random((16, 16, 3)) * 255).astype(np.uint8)
    async with in_process_client(Settings(device="cpu")) as client:
        response = await client.post("/v1/explain", files={"image": _upload(lr, "PNG")}, data={"box": "8,8,4,4", "steps": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "swiftrep"
