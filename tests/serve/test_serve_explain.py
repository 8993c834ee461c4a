"""``POST /v1/explain`` in-process: the map as JSON (heatmap PNG, numbers, raw values), its
errors, and the page's parts for it (the browser test drives them in Chromium)."""

from __future__ import annotations

import base64
import contextlib
import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from serving import image_bytes
from superres.attribution import Box, explain
from superres.serve import Settings, create_app
from superres.serve.app import STATIC

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def client_for(settings: Settings | None = None):
    app = create_app(settings or Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client


@pytest.fixture
async def client():
    async with client_for() as c:
        yield c


async def post(client, width=24, height=20, **form):
    files = {"image": ("small.png", image_bytes(width, height), "image/png")}
    return await client.post("/v1/explain", files=files, data={k: str(v) for k, v in form.items()})


def assert_error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert re.search(pattern, body["error"]), body["error"]


async def test_explain_returns_heatmap_numbers_and_values(client):
    response = await post(client, model="espcn", scale=2, box="16,12,8,8", steps=4, include_values="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "espcn" and body["scale"] == 2 and body["steps"] == 4
    assert body["box"] == {"x": 16, "y": 12, "width": 8, "height": 8}
    assert body["input_box"] == {"x": 8, "y": 6, "width": 4, "height": 4}
    assert 0 <= body["diffusion_index"] <= 100 and 0 < body["outside_share"] < 1
    assert body["heatmap"].startswith("data:image/png;base64,")
    heatmap = Image.open(io.BytesIO(base64.b64decode(body["heatmap"].split(",", 1)[1])))
    assert heatmap.size == (24, 20)
    values = np.frombuffer(base64.b64decode(body["values"]["data"]), dtype="<f4").reshape(body["values"]["shape"])
    assert values.shape == (20, 24)
    # The same map as the library computes for the same pixels.
    pixels = np.asarray(Image.open(io.BytesIO(image_bytes(24, 20))))
    expected = explain("espcn", pixels, Box(16, 12, 8, 8), scale=2, steps=4)
    np.testing.assert_allclose(values, expected.map, atol=1e-6 * np.abs(expected.map).max())
    assert body["diffusion_index"] == pytest.approx(expected.diffusion_index)


async def test_values_only_on_request_and_defaults(client):
    body = (await post(client, model="bicubic", scale=2, box="0,0,6,6", steps=2)).json()
    assert "values" not in body and body["heatmap"].startswith("data:image/png")


@pytest.mark.parametrize(
    "form,status,pattern",
    [
        ({"model": "bicubic", "scale": 2, "box": "1,2,3"}, 422, r"X,Y,W,H"),
        ({"model": "bicubic", "scale": 2, "box": "41,0,8,8"}, 422, r"not inside the 48x40 output"),
        ({"model": "bicubic", "scale": 2, "box": "0,0,1,8"}, 422, r"too small"),
        ({"model": "nope", "scale": 2, "box": "0,0,4,4"}, 422, r"unknown model 'nope'"),
        ({"model": "bicubic", "scale": 2, "box": "0,0,4,4", "steps": 0}, 422, r"steps"),
        ({"model": "bicubic", "scale": 2, "box": "0,0,4,4", "steps": 101}, 422, r"steps"),
        ({"model": "bicubic", "scale": 2}, 422, r"missing form field 'box'"),
    ],
)
async def test_explain_errors(client, form, status, pattern):
    assert_error(await post(client, **form), status, pattern)


async def test_unreadable_and_too_large_images():
    async with client_for(Settings(max_input_pixels=100)) as client:
        files = {"image": ("notes.png", b"not pixels at all", "image/png")}
        assert_error(await client.post("/v1/explain", files=files, data={"box": "0,0,4,4", "model": "bicubic", "scale": "2"}), 400, r"cannot read")
        assert_error(await post(client, model="bicubic", scale=2, box="0,0,4,4"), 413, r"explanations take at most 100 pixels")


async def test_endpoint_is_documented(client):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/explain"]["post"]
    assert "Local Attribution Map" in operation["summary"]
    assert {"422", "413", "503"} <= set(operation["responses"])


def test_page_has_the_explain_controls():
    # The page's parts for explaining a box; the browser test drives them end to end.
    html = (STATIC / "index.html").read_text()
    for element in ("explain-mode", "explain-x", "explain-y", "explain-w", "explain-h", "explain-go", "explain-heatmap", "explain-info", "selection"):
        assert f'id="{element}"' in html, element
    script = (STATIC / "app.js").read_text()
    assert '"/v1/explain"' in script and 'append("box"' in script
