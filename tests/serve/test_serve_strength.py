"""POST /v1/upscale with a strength: a perceptual model blended toward its fidelity partner, as
`superres upscale --strength` does, on weight files in the server's weights folder; refused with
a 422 for a model without a partner or a strength outside [0, 1]."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import superres
from model_files import write_blend_pair
from serving import image_bytes, in_process_client
from superres.serve import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def post(client, **form):
    files = {"image": ("photo.png", image_bytes(20, 12), "image/png")}
    return await client.post("/v1/upscale", files=files, data={k: str(v) for k, v in form.items()})


async def test_models_say_which_has_a_strength_control(tmp_path):
    write_blend_pair(tmp_path)
    async with in_process_client(Settings(weights_dirs=(tmp_path,))) as client:
        models = {m["name"]: m for m in (await client.get("/v1/models")).json()["models"]}
    assert models["swiftrep-real-gan"]["fidelity"] == "swiftrep-real"
    assert models["swiftrep-real"]["fidelity"] is None and models["bicubic"]["fidelity"] is None
    # which models are for which photos
    assert models["swiftrep-real"]["trained_for"] == models["swiftrep-real-gan"]["trained_for"] == "real"
    assert models["bicubic"]["trained_for"] == "bicubic"


async def test_strength_blends_as_the_library_does(tmp_path):
    fid_path, gan_path = write_blend_pair(tmp_path)
    pixels = np.asarray(Image.open(io.BytesIO(image_bytes(20, 12))).convert("RGB"))
    async with in_process_client(Settings(weights_dirs=(tmp_path,))) as client:
        half = await post(client, model="swiftrep-real-gan", scale=4, strength=0.5)
        full = await post(client, model="swiftrep-real-gan", scale=4)
    assert half.status_code == 200, half.text
    assert half.headers["x-superres-strength"] == "0.5" and "x-superres-strength" not in full.headers
    expected = superres.load(gan_path, 4, strength=0.5, fidelity=fid_path, tile=0).upscale(pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(half.content))), expected)
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(full.content))), superres.load(gan_path, 4, tile=0).upscale(pixels)
    )


async def test_strength_is_refused_where_it_cannot_apply(tmp_path):
    write_blend_pair(tmp_path)
    async with in_process_client(Settings(weights_dirs=(tmp_path,))) as client:
        no_partner = await post(client, model="bicubic", scale=4, strength=0.5)
        out_of_range = await post(client, model="swiftrep-real-gan", scale=4, strength=1.5)
    assert no_partner.status_code == 422 and "no strength control" in no_partner.json()["error"]
    assert out_of_range.status_code == 422

