"""The web app's API in-process (httpx over ASGI): every endpoint, every error status, the
queue's 503, the limits, CORS, the page and the offline docs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import threading

import httpx
import pytest
from PIL import Image

import superres
from serving import image_bytes, write_test_checkpoint
from superres import cli
from superres.serve import Settings, create_app
from superres.serve.app import STATIC

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def client_for(settings: Settings | None = None, load=None):
    app = create_app(settings or Settings(), loader=load)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            client.app = app
            yield client


@pytest.fixture
async def client():
    async with client_for() as c:
        yield c


def png(width=32, height=32, mode="RGB"):
    return ("small.png", image_bytes(width, height, mode), "image/png")


async def post(client, image=None, headers=None, **form):
    files = {"image": image if image is not None else png()}
    return await client.post("/v1/upscale", files=files, data={k: str(v) for k, v in form.items()}, headers=headers)


def decoded(content: bytes) -> Image.Image:
    return Image.open(io.BytesIO(content))


def assert_error(response, status: int, pattern: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert re.search(pattern, body["error"]), body["error"]


# --------------------------------------------------------------------------- endpoints


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["device"] == "cpu"
    assert body["queue"] == {"workers": 1, "running": 0, "waiting": 0, "capacity": 5}


async def test_models_offer_bicubic_at_every_scale(client):
    body = (await client.get("/v1/models")).json()
    by_name = {m["name"]: m for m in body["models"]}
    assert [s["scale"] for s in by_name["bicubic"]["scales"]] == [2, 3, 4, 8]
    assert by_name["bicubic"]["learned"] is False
    assert body["formats"] == ["png", "jpeg", "webp", "gif"]
    assert body["limits"] == {"max_upload_bytes": 25 << 20, "max_input_pixels": 8_000_000, "max_output_pixels": 64_000_000}
    # The default is the inference default when its weights exist, else bicubic.
    assert body["default"]["model"] in by_name
    assert body["default"]["scale"] in [s["scale"] for s in by_name[body["default"]["model"]]["scales"]]


async def test_models_from_an_extra_weights_folder_show_quality(tmp_path):
    quality = {"Set5": {"psnr": 30.5, "ssim": 0.87}, "Set14": {"psnr": 27.25, "ssim": 0.76, "note": "x"}}
    write_test_checkpoint(tmp_path, scale=2, quality=quality)
    # A file whose contents are not what its name says is ignored, not served under a false name.
    (tmp_path / "other").mkdir()
    write_test_checkpoint(tmp_path / "other", scale=2).rename(tmp_path / "vdsr_x2.safetensors")
    async with client_for(Settings(weights_dirs=(tmp_path,), default_model="fsrcnn-s", default_scale=4)) as client:
        body = (await client.get("/v1/models")).json()
    by_name = {m["name"]: m for m in body["models"]}
    assert "vdsr" not in by_name
    learned = by_name["fsrcnn-s"]
    assert learned["learned"] is True
    assert learned["scales"] == [
        {"scale": 2, "parameters": 10872, "quality": {"Set5": {"psnr": 30.5, "ssim": 0.87}, "Set14": {"psnr": 27.25, "ssim": 0.76}}}
    ]
    assert body["default"] == {"model": "fsrcnn-s", "scale": 2}  # x4 is not offered; its one scale is


async def test_upscale_bicubic_png(client):
    response = await post(client, model="bicubic", scale=2)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="small_bicubic_x2.png"'
    assert response.headers["x-superres-model"] == "bicubic"
    assert decoded(response.content).size == (64, 64)


@pytest.mark.parametrize("fmt, media, pil", [("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")])
async def test_upscale_other_formats(client, fmt, media, pil):
    response = await post(client, png(24, 16), model="bicubic", scale=3, format=fmt, quality=80)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    image = decoded(response.content)
    assert (image.format, image.size) == (pil, (72, 48))


async def test_upscale_keeps_alpha_and_grey(client):
    rgba = decoded((await post(client, png(16, 16, "RGBA"), model="bicubic", scale=2)).content)
    assert (rgba.mode, rgba.size) == ("RGBA", (32, 32))
    grey = decoded((await post(client, png(16, 16, "L"), model="bicubic", scale=2)).content)
    assert (grey.mode, grey.size) == ("L", (32, 32))


async def test_upscale_with_a_learned_model_from_a_weights_folder(tmp_path):
    write_test_checkpoint(tmp_path, scale=2)
    async with client_for(Settings(weights_dirs=(tmp_path,))) as client:
        response = await post(client, model="fsrcnn-s", scale=2)
        health = (await client.get("/healthz")).json()
    assert response.status_code == 200, response.text
    assert decoded(response.content).size == (64, 64)
    assert health["loaded_models"] == ["fsrcnn-s x2"]


async def test_defaults_when_model_and_scale_are_left_out(client):
    response = await post(client)
    assert response.status_code == 200, response.text
    default = (await client.get("/v1/models")).json()["default"]
    # The default is auto: the model chosen for this upload is named, and why.
    assert default["model"] == "auto"
    assert response.headers["x-superres-model"] in ("swiftrep", "swiftrep-light", "swiftrep-real")
    assert response.headers["x-superres-auto"]
    assert decoded(response.content).size == (32 * default["scale"],) * 2


# --------------------------------------------------------------------------- errors


async def test_400_not_an_image(client):
    response = await post(client, ("page.png", b"<html>not a picture</html>", "image/png"), model="bicubic", scale=2)
    assert_error(response, 400, r"cannot read 'page.png': not an image")


async def test_400_empty_and_truncated_files(client):
    assert_error(await post(client, ("e.png", b"", "image/png"), model="bicubic", scale=2), 400, "empty file")
    truncated = image_bytes(32, 32)[:60]
    assert_error(await post(client, ("t.png", truncated, "image/png"), model="bicubic", scale=2), 400, "cannot read 't.png'")


async def test_413_declared_body_size():
    async with client_for(Settings(max_upload_bytes=10_000)) as client:
        big = image_bytes(200, 200)  # noise: ~120 KB as PNG
        response = await post(client, ("big.png", big, "image/png"), model="bicubic", scale=2)
    assert_error(response, 413, r"^upload too large: over this server's limit of 9.77 KiB \(max_upload_bytes=10000\)$")


async def test_413_streamed_body_is_counted_without_content_length():
    boundary = "superres-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + image_bytes(200, 200) + f"\r\n--{boundary}--\r\n".encode()
    sent = 0

    async def chunks():
        nonlocal sent
        for start in range(0, len(body), 4096):
            sent += 1
            yield body[start : start + 4096]

    async with client_for(Settings(max_upload_bytes=10_000)) as client:
        response = await client.post(
            "/v1/upscale", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "upload too large")


async def test_413_input_pixels_from_the_header():
    async with client_for(Settings(max_input_pixels=32 * 32 - 1)) as client:
        response = await post(client, model="bicubic", scale=2)
    assert_error(response, 413, r"^cannot read 'small.png': too large: 32x32 = 1,024 pixels, over this server's limit of 1,023 pixels \(max_input_pixels\)$")


async def test_413_output_pixels():
    async with client_for(Settings(max_output_pixels=100 * 100)) as client:
        ok = await post(client, model="bicubic", scale=3)  # 96x96
        refused = await post(client, model="bicubic", scale=4)  # 128x128
    assert ok.status_code == 200
    assert_error(refused, 413, r"^the result would be 128x128 = 16,384 pixels, over this server's limit of 10,000 pixels \(max_output_pixels\); use a smaller image or scale$")


def _flat(width: int, height: int, fmt: str = "PNG") -> bytes:
    """Many pixels in few bytes."""
    buffer = io.BytesIO()
    Image.new("L", (width, height), 90).save(buffer, fmt)
    return buffer.getvalue()


async def test_413_for_a_decompression_bomb_says_its_real_size(client):
    # 400 MP: over Pillow's own ceiling (2 x 89 MP), where Pillow will not even say the size.
    response = await post(client, ("bomb.png", _flat(20000, 20000), "image/png"), model="bicubic", scale=2)
    assert_error(response, 413, r"^cannot read 'bomb.png': too large: 20000x20000 = 400.0 megapixels, over this server's limit")
    # and one under Pillow's ceiling but over the server's
    response = await post(client, ("big.png", _flat(4000, 2500), "image/png"), model="bicubic", scale=2)
    assert_error(response, 413, r"too large: 4000x2500 = 10.0 megapixels")


async def test_a_format_we_do_not_read_is_unsupported_however_large(client):
    # The header probe opens only the formats we read: a Photoshop file is not measured by
    # a Pillow plugin and answered 413, it is a PSD, which superres does not read.
    response = await post(client, ("bomb.psd", b"8BPS\x00\x01" + bytes(6) + b"\x00\x03\x00\x00\x4e\x20\x00\x00\x4e\x20", "image/vnd.adobe.photoshop"), model="bicubic", scale=2)
    assert_error(response, 400, r"^cannot read 'bomb.psd': unsupported format Photoshop \(PSD\)")


async def test_a_gif_bomb_is_measured_from_its_header(client):
    # GIF is read since issue 15: its logical screen size is checked before any decoding.
    response = await post(client, ("bomb.gif", _flat(20000, 20000, "GIF"), "image/gif"), model="bicubic", scale=2)
    assert_error(response, 413, r"^cannot read 'bomb.gif': too large: 20000x20000 = 400.0 megapixels, over this server's limit")


@pytest.mark.parametrize("fmt, limit", [("webp", 16383), ("jpeg", 65500)])
async def test_422_before_the_upscale_for_a_result_its_encoder_cannot_write(fmt, limit):
    calls = []

    def counting(reference, **kwargs):
        calls.append(reference)
        return superres.load(reference, **kwargs)

    strip = ("strip.png", image_bytes(20000, 1), "image/png")
    async with client_for(load=counting) as client:
        response = await post(client, strip, model="bicubic", scale=4, format=fmt)
        assert_error(response, 422, rf"^the result would be 80000x4, over {fmt.upper()}'s limit of {limit} pixels a side; ask for png")
        assert calls == []  # refused before any model was loaded or run
        response = await post(client, strip, model="bicubic", scale=4, format="png")
    assert response.status_code == 200 and decoded(response.content).size == (80000, 4)


async def test_422_for_two_images_in_one_request(client):
    files = [("image", png()), ("image", ("other.png", image_bytes(8, 8), "image/png"))]
    response = await client.post("/v1/upscale", files=files, data={"model": "bicubic", "scale": "2"})
    assert_error(response, 422, r"^send one image per request \(got 2 'image' fields\)$")


async def test_the_limits_answers_carry_the_security_headers():
    async with client_for(Settings(max_upload_bytes=10_000)) as client:
        response = await post(client, ("big.png", image_bytes(200, 200), "image/png"), model="bicubic", scale=2)
        refused = await client.get("/healthz", headers={"host": "evil.example"})
    for answer in (response, refused):
        assert answer.status_code in (400, 413)
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_requests_for_another_host_are_refused_dns_rebinding():
    async with client_for() as client:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
            assert_error(await client.get("/healthz", headers={"host": host}), 400, rf"does not answer to host '{re.escape(host)}'")
        # The /static redirect does not echo a host it does not answer to.
        redirect = await client.get("/static", headers={"host": "evil.example"})
        assert redirect.status_code == 400 and "location" not in redirect.headers
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "192.168.1.20"):
            assert (await client.get("/healthz", headers={"host": host})).status_code == 200, host
        assert (await client.get("/static", headers={"host": "localhost:8000"})).headers["location"].startswith("http://localhost:8000/")
    async with client_for(Settings(allowed_hosts=("sr.lan",))) as client:
        assert (await client.get("/healthz", headers={"host": "sr.lan:8000"})).status_code == 200
        assert (await client.get("/healthz", headers={"host": "SR.LAN"})).status_code == 200


async def test_a_post_from_another_site_is_refused_before_anything_runs():
    calls = []

    def counting(reference, **kwargs):
        calls.append(reference)
        return superres.load(reference, **kwargs)

    async with client_for(load=counting) as client:
        for origin in ("http://evil.example", "null", "http://127.0.0.1:8001"):
            response = await post(client, model="bicubic", scale=2, headers={"origin": origin})
            assert_error(response, 403, rf"^cross-origin request from '{re.escape(origin)}' refused")
        assert calls == []
        # The server's own page, and a client that is not a browser (no Origin), are served.
        assert (await post(client, model="bicubic", scale=2, headers={"origin": "http://127.0.0.1:8000"})).status_code == 200
        assert (await post(client, model="bicubic", scale=2)).status_code == 200
    async with client_for(Settings(cors_origins=("http://app.example",))) as client:
        assert (await post(client, model="bicubic", scale=2, headers={"origin": "http://app.example"})).status_code == 200
        assert (await post(client, model="bicubic", scale=2, headers={"origin": "http://evil.example"})).status_code == 403


async def test_422_unknown_model(client):
    assert_error(await post(client, model="nope", scale=2), 422, r"unknown model 'nope'; this server offers: .*bicubic")


@pytest.mark.parametrize("name", ["/etc/passwd", "../models/weights/espcn_x2.safetensors", "espcn_x2.safetensors"])
async def test_422_paths_are_never_models(client, tmp_path, name):
    assert_error(await post(client, model=name, scale=2), 422, "unknown model")


async def test_a_scale_not_offered_is_reached_from_the_model_above_or_the_largest(tmp_path):
    # Since issue 15 as everywhere else (superres.inference.sizing): not a 422 any more.
    write_test_checkpoint(tmp_path, scale=2)
    async with client_for(Settings(weights_dirs=(tmp_path,))) as client:
        five = await post(client, model="bicubic", scale=5)
        assert five.headers["x-superres-scale"] == "8" and decoded(five.content).size == (160, 160)
        three = await post(client, model="fsrcnn-s", scale=3)
        assert three.headers["x-superres-scale"] == "2" and decoded(three.content).size == (96, 96)
        # A learned model without weights is not offered at all.
        assert_error(await post(client, model="edsr", scale=2), 422, "unknown model 'edsr'")


async def test_422_validation_errors_have_the_same_shape(client):
    assert_error(await post(client, model="bicubic", scale="two"), 422, r"^scale: Input should be a valid number")
    assert_error(await post(client, model="bicubic", scale=2, format="bmp"), 422, r"^format: Input should be 'png', 'jpeg', 'webp' or 'gif'")
    assert_error(await post(client, model="bicubic", scale=2, quality=0), 422, r"^quality: Input should be greater than or equal to 1")
    no_file = await client.post("/v1/upscale", data={"model": "bicubic"})
    assert_error(no_file, 422, r"^missing form field 'image'$")


async def test_404_and_405_are_json(client):
    assert_error(await client.get("/v2/nothing"), 404, "^not found: /v2/nothing$")
    assert_error(await client.delete("/v1/models"), 405, "^method DELETE not allowed on /v1/models$")


async def test_500_when_a_model_fails_to_load():
    from superres.errors import SuperresError

    def broken(reference, **kwargs):
        raise SuperresError(f"cannot read '{reference}': damaged file")

    async with client_for(load=broken) as client:
        assert_error(await post(client, model="bicubic", scale=2), 500, r"^upscaling failed: cannot read 'bicubic': damaged file$")


# --------------------------------------------------------------------------- queue and cache


class Gate:
    """A loader whose upscalers block until released, to hold the queue full."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def __call__(self, reference, **kwargs):
        upscaler = superres.load(reference, **kwargs)
        gate = self

        class Held:
            def upscale_image_data(self, image, **kw):
                gate.started.release()
                assert gate.release.wait(30), "test never released the gate"
                return upscaler.upscale_image_data(image, **kw)

        return Held()


async def test_503_when_the_queue_is_full():
    gate = Gate()
    async with client_for(Settings(workers=1, queue_size=2), load=gate) as client:
        held = [asyncio.create_task(post(client, model="bicubic", scale=2)) for _ in range(3)]
        # One job is running (blocked in the gate), two are waiting: the queue is full.
        await asyncio.to_thread(gate.started.acquire, True, 30)
        for _ in range(100):
            health = (await client.get("/healthz")).json()["queue"]
            if health["waiting"] == 2:
                break
            await asyncio.sleep(0.02)
        assert health == {"workers": 1, "running": 1, "waiting": 2, "capacity": 3}

        refused = await post(client, model="bicubic", scale=2)
        assert_error(refused, 503, r"^server busy: 3 jobs already running or waiting; try again in a moment$")
        assert refused.headers["retry-after"] == "2"
        # A bad request still gets its own 4xx while the queue is full: it never needed a worker.
        assert_error(await post(client, ("x.png", b"nope", "image/png"), model="bicubic", scale=2), 400, "not an image")
        assert_error(await post(client, model="nope", scale=2), 422, "unknown model")

        gate.release.set()
        results = await asyncio.gather(*held)
        assert [r.status_code for r in results] == [200, 200, 200]
        assert (await post(client, model="bicubic", scale=2)).status_code == 200
        assert (await client.get("/healthz")).json()["queue"]["running"] == 0


async def test_loaded_models_are_cached_least_recently_used_first():
    loads = []
    def counting(reference, **kwargs):
        loads.append((reference, kwargs["scale"]))
        return superres.load(reference, **kwargs)

    async with client_for(Settings(cache_size=2), load=counting) as client:
        for scale in (2, 3, 2, 3, 4, 2):
            assert (await post(client, png(8, 8), model="bicubic", scale=scale)).status_code == 200
        health = (await client.get("/healthz")).json()
    # 2 and 3 are loaded once each; 4 evicts 2 (least recently used), which is then reloaded.
    assert [s for _, s in loads] == [2, 3, 4, 2]
    assert health["loaded_models"] == ["bicubic x4", "bicubic x2"]


# --------------------------------------------------------------------------- CORS, page and docs


async def test_cors_is_off_unless_configured():
    headers = {"origin": "http://elsewhere.example"}
    async with client_for() as client:
        response = await client.get("/v1/models", headers=headers)
        preflight = await client.options("/v1/upscale", headers={**headers, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 405
    async with client_for(Settings(cors_origins=("http://elsewhere.example",))) as client:
        response = await client.get("/v1/models", headers=headers)
        preflight = await client.options("/v1/upscale", headers={**headers, "access-control-request-method": "POST"})
        other = await client.get("/v1/models", headers={"origin": "http://evil.example"})
    assert response.headers["access-control-allow-origin"] == "http://elsewhere.example"
    assert preflight.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_page_and_its_assets_are_local(client):
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for path in ("/static/app.js", "/static/style.css", "/static/docs.js"):
        assert (await client.get(path)).status_code == 200
    # No file of the page or the docs loads anything from another host.
    for file in STATIC.iterdir():
        text = file.read_text()
        assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]", text, re.I), f"{file.name} refers to another host"


async def test_docs_render_offline_from_openapi(client):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    refs = re.findall(r'(?:src|href)="([^"]*)"', docs.text)
    assert refs and all(r.startswith(("/", "#", "data:")) for r in refs), refs
    assert "/static/docs.js" in refs
    assert (await client.get("/redoc")).status_code == 404


async def test_openapi_is_complete(client):
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) == {"/healthz", "/v1/models", "/v1/upscale", "/v1/explain"}
    upscale = spec["paths"]["/v1/upscale"]["post"]
    body = upscale["requestBody"]["content"]["multipart/form-data"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].split("/")[-1]]
    assert set(schema["properties"]) == {"image", "model", "scale", "width", "height", "fit", "ensemble", "strength", "format", "quality"}
    assert schema["required"] == ["image"]
    assert schema["properties"]["format"]["enum"] == ["png", "jpeg", "webp", "gif"]
    assert set(upscale["responses"]) == {"200", "400", "413", "422", "503"}
    assert set(upscale["responses"]["200"]["content"]) == {"image/png", "image/jpeg", "image/webp", "image/gif"}
    assert upscale["responses"]["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


# --------------------------------------------------------------------------- the command line


def test_cli_serve_binds_to_loopback_by_default(monkeypatch):
    import superres.serve

    calls = []
    monkeypatch.setattr(superres.serve, "run", lambda settings, **kw: calls.append((settings, kw)))
    assert cli.main(["serve", "--queue-size", "2", "--max-upload-mb", "1"]) == 0
    settings, kwargs = calls[0]
    assert kwargs == {"host": "127.0.0.1", "port": 8000}
    assert (settings.queue_size, settings.max_upload_bytes, settings.workers, settings.cors_origins) == (2, 1 << 20, 1, ())


def test_cli_serve_reports_bad_options_in_one_line(capsys):
    assert cli.main(["serve", "--workers", "0"]) == 1
    assert capsys.readouterr().err.strip() == "superres: error: bad option workers: Input should be greater than or equal to 1"


async def test_an_uploaded_file_name_is_never_echoed_as_markup():
    """Issue 32, item 9: an error quoted the raw upload name, HTML and all, inside its JSON."""
    name = '<img src=x onerror="alert(1)">.png'
    async with client_for() as client:
        response = await post(client, image=(name, b"<html>not a picture</html>", "image/png"), model="bicubic", scale=2)
        # (httpx sends the quotes as %22, as browsers do)
        assert_error(response, 400, r"^cannot read '&lt;img src=x onerror=%22alert\(1\)%22&gt;.png': not an image")
        assert "<img" not in response.text
        explained = await client.post("/v1/explain", files={"image": (name, b"<p>no</p>", "image/png")}, data={"box": "0,0,4,4", "model": "bicubic", "scale": "2"})
        assert_error(explained, 400, "&lt;img")
        assert "<img" not in explained.text
