"""The page end to end in headless Chromium: a real uvicorn server on 127.0.0.1, a real upload,
the comparison slider by mouse and keyboard, the zoom, the download, and the docs page.

Uses Debian's Chromium (``apt-get install chromium``) through the Playwright client; no
browser is downloaded. Skips with a message when /usr/bin/chromium is absent. Saves the
screenshot docs/screenshots/web-ui.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from model_files import write_blend_pair
from serving import image_bytes, thread_server, write_test_checkpoint
from superres.models import pretrained_path
from superres.serve import Settings, create_app

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "superres" / "assets" / "demo.png"
SCREENSHOT = REPO / "docs" / "screenshots" / "web-ui.png"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    write_test_checkpoint(weights, scale=2, quality={"Set5": {"psnr": 33.1, "ssim": 0.91}})
    write_blend_pair(weights)  # a perceptual model and its fidelity partner: the strength slider
    app = create_app(Settings(weights_dirs=(weights,)))
    with thread_server(app) as base_url:
        yield base_url


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Chromium logs every 4xx as a console error; the tests cause some on purpose.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    yield page
    context.close()
    # Nothing but this server (and the page's own blob:/data: URLs) was ever asked for anything.
    foreign = [url for url in requests if not url.startswith((server, "blob:", "data:"))]
    assert not foreign, f"requests to other hosts: {foreign}"
    assert not errors, f"errors in the page: {errors}"


def open_with_image(page, server, tmp_path, width: int, height: int, model: str = "fsrcnn-s") -> None:
    """The page loaded with ``model`` listed, and a ``width`` x ``height`` PNG chosen (its size shown)."""
    page.goto(server + "/")
    page.wait_for_selector(f"#model option[value='{model}']", state="attached")
    source = tmp_path / "small.png"
    source.write_bytes(image_bytes(width, height))
    page.set_input_files("#file", str(source))
    page.wait_for_selector(f"#file-meta:has-text('{width}×{height}')")


def split(page) -> int:
    return int(page.get_attribute("#divider", "aria-valuenow"))


def test_upscale_compare_and_download(page, server, tmp_path):
    page.goto(server + "/")
    page.wait_for_selector("#model option[value='fsrcnn-s']", state="attached")
    assert page.is_hidden("#file-info") and page.is_hidden("#result") and page.is_disabled("#go")

    # A file that is not an image: the server's one-line reason is shown, the page stays usable.
    (tmp_path / "notes.png").write_text("these are not pixels")
    page.set_input_files("#file", str(tmp_path / "notes.png"))
    page.click("#go")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.inner_text("#error")

    source = tmp_path / "small.png"
    source.write_bytes(image_bytes(32, 32))
    page.set_input_files("#file", str(source))
    page.wait_for_selector("#file-meta:has-text('32×32')")
    page.select_option("#model", "fsrcnn-s")
    page.select_option("#scale", "2")
    assert "Set5 33.10 dB / 0.9100" in page.inner_text("#model-info")
    assert page.inner_text("#model option[value='fsrcnn-s']") == "fsrcnn-s · Set5 33.10 dB"
    assert page.is_hidden("#error")
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    page.wait_for_selector("#status-text:has-text('Done in')")
    assert page.inner_text("#before-tag") == "bicubic ×2"
    assert page.inner_text("#after-tag") == "fsrcnn-s ×2"
    assert page.get_attribute("#stage", "data-compare") == "true"

    # The slider by keyboard...
    assert split(page) == 50
    page.focus("#divider")
    page.keyboard.press("ArrowRight")
    assert split(page) == 52
    page.keyboard.press("Shift+ArrowLeft")
    assert split(page) == 42
    page.keyboard.press("End")
    assert split(page) == 100
    page.keyboard.press("Home")
    assert split(page) == 0
    # ...and by dragging across the image.
    box = page.locator("#stage").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    page.mouse.up()
    assert abs(split(page) - 75) <= 1
    style = page.eval_on_selector("#stage", "el => el.style.getPropertyValue('--split')")
    assert abs(float(style.rstrip("%")) - 75) <= 1

    # Zoom 1:1 shows one image pixel per screen pixel (the 64x64 result at 64 CSS px here).
    page.click("button[data-zoom='1']")
    assert page.get_attribute("button[data-zoom='1']", "aria-pressed") == "true"
    assert page.locator("#stage").bounding_box()["width"] == pytest.approx(64, abs=1)
    page.click("button[data-zoom='fit']")
    assert page.locator("#stage").bounding_box()["width"] > 64

    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "small_fsrcnn-s_x2.png"
    with Image.open(download.path()) as result:
        assert (result.format, result.size) == ("PNG", (64, 64))


def test_an_exact_size_and_the_self_ensemble(page, server, tmp_path):
    open_with_image(page, server, tmp_path, 32, 32)
    page.select_option("#model", "fsrcnn-s")
    page.select_option("#scale", "1.5")  # a factor no model has: the x2 model runs, then a resize
    assert "32×32 → 48×48" in page.inner_text("#file-meta")
    assert "fsrcnn-s ×2" in page.inner_text("#model-info")
    page.fill("#width", "50")
    page.fill("#height", "40")
    assert "32×32 → 50×40" in page.inner_text("#file-meta")  # cover: exactly the box
    page.check("#ensemble")
    page.click("#go")
    page.wait_for_selector("#status-text:has-text('Done in')", timeout=60_000)
    assert page.inner_text("#after-tag") == "fsrcnn-s 50×40+"
    assert page.inner_text("#before-tag") == "bicubic 50×40"
    assert "50×40 pixels" in page.inner_text("#result-info")
    assert "own scale" in page.inner_text("#explain-status")  # a resized result is not explained
    with page.expect_download() as info:
        page.click("#download")
    assert info.value.suggested_filename == "small_fsrcnn-s_50x40.png"
    with Image.open(info.value.path()) as result:
        assert result.size == (50, 40)


def test_the_strength_slider_of_a_perceptual_model(page, server, tmp_path):
    open_with_image(page, server, tmp_path, 24, 16, model="swiftrep-real-gan")
    page.select_option("#model", "fsrcnn-s")
    assert page.is_hidden("#strength-field")  # no partner, no slider
    page.select_option("#model", "swiftrep-real-gan")
    page.select_option("#scale", "4")
    assert page.is_visible("#strength-field")
    assert "(swiftrep-real)" in page.inner_text("#strength-field")
    assert "for real photos" in page.inner_text("#model-info")
    page.eval_on_selector("#strength", "e => { e.value = '0.3'; e.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#strength-value") == "0.30"
    with page.expect_response(lambda r: r.url.endswith("/v1/upscale") and r.headers.get("x-superres-model") == "swiftrep-real-gan") as answer:
        page.click("#go")
    assert answer.value.headers["x-superres-strength"] == "0.3"  # the server blended at the slider's value
    page.wait_for_selector("#status-text:has-text('Done in')", timeout=60_000)
    assert page.inner_text("#after-tag") == "swiftrep-real-gan ×4 @0.30"
    assert page.inner_text("#before-tag") == "bicubic ×4"


def test_screenshot_and_docs(page, server, tmp_path):
    # The committed screenshot is refreshed only on request, so a test run leaves the tree clean.
    shot = SCREENSHOT if os.environ.get("SUPERRES_UPDATE_DOCS") else tmp_path / "web-ui.png"
    flagship = "swiftrep" if pretrained_path("swiftrep", 4).is_file() else "bicubic"
    page.goto(server + "/")
    page.wait_for_selector("#model:not([disabled])")
    page.set_input_files("#file", str(DEMO))
    page.select_option("#model", flagship)
    page.select_option("#scale", "4")
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.inner_text("#before-tag") == ("original (nearest)" if flagship == "bicubic" else "bicubic ×4")
    with Image.open(DEMO) as demo:
        width, height = demo.size
    assert page.inner_text("#result-info").startswith(f"{width * 4}×{height * 4} pixels")
    page.wait_for_selector("#status-text:has-text('Done in')")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    page.goto(server + "/docs")
    page.wait_for_selector(".endpoint >> nth=2")
    assert page.inner_text("#title").startswith("superres API")
    text = page.inner_text("#endpoints")
    for expected in ("/v1/upscale", "/v1/models", "/healthz", "multipart/form-data", "413", "503", "-F image=@photo.png"):
        assert expected in text


def test_explain_a_region(page, server, tmp_path):
    # Select a rectangle on the result by dragging (the slider must not move), explain it, and
    # get the heatmap over the input beside the result; a box too small disables the button.
    shot = SCREENSHOT.with_name("web-ui-explain.png") if os.environ.get("SUPERRES_UPDATE_DOCS") else tmp_path / "explain.png"
    open_with_image(page, server, tmp_path, 32, 32)
    page.select_option("#model", "fsrcnn-s")
    page.select_option("#scale", "2")
    page.click("#go")
    page.wait_for_selector("#status-text:has-text('Done in')", timeout=60_000)
    # A default box in the middle of the 64x64 result: 16 input pixels' worth at x2.
    assert [page.input_value(f"#explain-{k}") for k in "xywh"] == ["16", "16", "32", "32"]
    assert page.is_visible("#selection") and page.is_enabled("#explain-go")

    page.click("#explain-mode")
    assert page.get_attribute("#explain-mode", "aria-pressed") == "true"
    before = split(page)
    box = page.locator("#stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.75, steps=4)
    page.mouse.up()
    assert split(page) == before  # the drag drew a rectangle, not the comparison split
    x, y, w, h = (int(page.input_value(f"#explain-{k}")) for k in "xywh")
    assert (x, y) == (16, 16) and abs(w - 16) <= 1 and abs(h - 32) <= 1
    selection = page.locator("#selection").bounding_box()
    assert selection["width"] == pytest.approx(box["width"] * w / 64, abs=2)

    page.fill("#explain-w", "1")
    assert page.is_disabled("#explain-go")
    page.fill("#explain-w", "16")
    page.click("#explain-go")
    page.wait_for_selector("#explain-figure:not([hidden])", timeout=60_000)
    info = page.inner_text("#explain-info")
    assert "Diffusion Index" in info and "outside the box's own input area (8×16 px at 8,8" in info
    assert page.eval_on_selector("#explain-heatmap", "img => [img.naturalWidth, img.naturalHeight]") == [32, 32]
    assert page.is_hidden("#explain-error")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)


def test_explain_screenshot_for_the_docs(page, server):
    # docs/screenshots/web-ui-explain.png: the bundled demo at x4 with ESPCN (a shipped model
    # whose map takes a second), its default box explained. Only on request: it is a picture.
    if not os.environ.get("SUPERRES_UPDATE_DOCS"):
        pytest.skip("set SUPERRES_UPDATE_DOCS=1 to refresh docs/screenshots/web-ui-explain.png")
    page.goto(server + "/")
    page.wait_for_selector("#model:not([disabled])")
    page.set_input_files("#file", str(DEMO))
    page.select_option("#model", "espcn")
    page.select_option("#scale", "4")
    page.click("#go")
    page.wait_for_selector("#status-text:has-text('Done in')", timeout=60_000)
    page.click("#explain-go")
    page.wait_for_selector("#explain-figure:not([hidden])", timeout=60_000)
    shot = SCREENSHOT.with_name("web-ui-explain.png")
    page.locator("#result").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
