"""The REST API's any-size, self-ensemble and GIF options: the same library calls as the CLI's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.imaging import read_image
from superres.serve import Settings
from test_serve_api import assert_error, client_for, decoded, png, post

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.parametrize(
    "form, size, name",
    [
        ({"scale": 1.5}, (48, 48), "small_espcn_x1.5.png"),
        ({"width": 50}, (50, 50), "small_espcn_w50.png"),
        ({"width": 60, "height": 40}, (60, 40), "small_espcn_60x40.png"),  # cover: exactly the box
        ({"width": 60, "height": 40, "fit": "contain"}, (40, 40), "small_espcn_60x40.png"),
        ({"scale": 5}, (160, 160), "small_espcn_x5.png"),  # above every scale: x4 then bicubic
    ],
)
async def test_any_size_comes_back_exactly(form, size, name):
    async with client_for() as client:
        response = await post(client, model="espcn", **form)
    assert response.status_code == 200, response.text
    assert decoded(response.content).size == size
    assert response.headers["x-superres-size"] == f"{size[0]}x{size[1]}"
    assert response.headers["content-disposition"] == f'inline; filename="{name}"'


async def test_the_model_scale_is_the_one_above_the_factor():
    async with client_for() as client:
        assert (await post(client, model="espcn", scale=1.5)).headers["x-superres-scale"] == "2"
        assert (await post(client, model="espcn", scale=2.5)).headers["x-superres-scale"] == "3"
        assert (await post(client, model="espcn", scale=3)).headers["x-superres-scale"] == "3"


async def test_ensemble_is_cached_apart_and_reported():
    async with client_for() as client:
        plain = await post(client, model="espcn", scale=2)
        plus = await post(client, model="espcn", scale=2, ensemble="true")
        health = (await client.get("/healthz")).json()
    assert plus.status_code == 200 and plus.headers["x-superres-ensemble"] == "true"
    assert plain.headers["x-superres-ensemble"] == "false" and plain.content != plus.content
    assert sorted(health["loaded_models"]) == ["espcn x2", "espcn x2+"]


async def test_bad_sizes_are_422():
    async with client_for() as client:
        assert_error(await post(client, model="espcn", scale=0.5), 422, "scale must be above 1")
        assert_error(await post(client, model="espcn", scale=1.5, width=9), 422, "not both")
        assert_error(await post(client, model="espcn", width=0), 422, "width must be")
        assert_error(await post(client, model="nope", width=10), 422, "unknown model 'nope'")
        assert_error(await post(client, model="espcn", width=10, fit="squash"), 422, "^fit: Input should be")


async def test_the_limit_counts_what_the_model_computes():
    async with client_for(Settings(max_output_pixels=60 * 60)) as client:
        # x1.5 of 32x32 is 48x48 (2,304 pixels) but the x2 model computes 64x64 (4,096).
        assert_error(await post(client, model="espcn", scale=1.5), 413, r"48x48, 4,096 pixels to compute with the x2 model")


async def test_an_animated_gif_comes_back_animated():
    frames = [Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=[50, 60, 70], loop=0)
    async with client_for() as client:
        response = await post(client, ("walk.gif", buffer.getvalue(), "image/gif"), model="bicubic", scale=2, format="gif")
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    out = read_image(response.content)
    assert out.size == (16, 20) and out.animation.durations == [50, 60, 70] and out.animation.loop == 0


async def test_png_of_an_animation_is_its_first_frame():
    async with client_for() as client:
        response = await post(client, png(), model="bicubic", scale=2, format="gif")
    assert response.status_code == 200 and read_image(response.content).animation is None


async def test_a_result_over_the_memory_budget_is_413_and_a_smaller_size_422(monkeypatch):
    """Issue 32, item 2: the server shares the library's memory plan, below its own pixel limit."""
    monkeypatch.setenv("SUPERRES_MEMORY_LIMIT", "100K")
    async with client_for() as client:
        assert_error(await post(client, model="bicubic", scale=4), 413, r"128x128 \(0.016 MP\), needing about .* over the limit of 102 kB")
    monkeypatch.delenv("SUPERRES_MEMORY_LIMIT")
    async with client_for() as client:
        assert_error(await post(client, model="bicubic", width=1, height=1), 422, "no larger.*superres only enlarges")
