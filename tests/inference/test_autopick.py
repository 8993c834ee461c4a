"""``-m auto``: the model chosen per image from its JPEG quality, noise and blur, and the choice
said where it is made (library, Upscaler, the CLI's log, eval's per-image rows)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.data.degradations.presets import degrade
from superres.errors import SuperresError
from superres.imaging.color import modcrop
from superres.imaging.io import ImageData, read_image, write_image
from superres.imaging.resize import imresize
from superres.inference import load
from superres.inference.autopick import CLEAN, LIGHT, REAL, AutoModel, choose_model, decide, measure, shipped_scales


@pytest.fixture(scope="module")
def bird_hr(set5) -> np.ndarray:
    return modcrop(read_image(set5 / "bird.png").pixels, 4)


@pytest.fixture(scope="module")
def clean_lr(bird_hr) -> np.ndarray:
    return imresize(bird_hr, 1 / 4)  # the paper protocol's LR: a clean downscale


def _jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_a_clean_downscale_gets_the_clean_flagship(clean_lr):
    choice = choose_model(clean_lr, 4)
    assert choice.name == CLEAN and choice.reason.startswith("clean: noise sigma")
    assert choice.measurements.jpeg_quality is None


@pytest.mark.parametrize("quality,model", [(40, LIGHT), (60, LIGHT), (84, LIGHT), (90, CLEAN), (95, CLEAN)])
def test_a_jpeg_is_judged_by_its_quality_from_any_kind_of_image(clean_lr, quality, model):
    data = _jpeg_bytes(clean_lr, quality)
    for image in (read_image(data), Image.open(io.BytesIO(data))):  # an ImageData and a Pillow JPEG both carry it
        choice = choose_model(image, 4)
        assert choice.name == model and choice.measurements.jpeg_quality == quality
    decoded = np.asarray(Image.open(io.BytesIO(data)))  # pixels alone: the file given beside them
    assert choose_model(decoded, 4, jpeg_file=data).name == model
    if model == LIGHT:
        assert choose_model(read_image(data), 4).reason == f"JPEG quality {quality}, below 85"


def test_noise_gets_the_light_model_and_blur_the_real_world_one(bird_hr, clean_lr):
    noisy = np.clip(clean_lr + np.random.default_rng(0).normal(0, 10, clean_lr.shape), 0, 255).round().astype(np.uint8)
    choice = choose_model(noisy, 4)
    assert choice.name == LIGHT and choice.reason.startswith("noisy: noise sigma")
    assert choice.measurements.noise == pytest.approx(10, rel=0.2)
    blurred = imresize(imresize(bird_hr, 1 / 8), 2.0)  # downscaled and enlarged again: no detail near Nyquist
    assert choose_model(blurred, 4).name == REAL
    assert choose_model(degrade(bird_hr, 4, "real", key="baby"), 4).name in (REAL, LIGHT)  # a second-order input is never "clean"


def test_a_scale_a_model_lacks_falls_back_to_one_that_has_it(clean_lr):
    jpeg = measure(read_image(_jpeg_bytes(clean_lr, 40)))
    available = shipped_scales()
    assert 2 not in available[LIGHT] and 3 not in available[REAL]
    at_2 = decide(jpeg, 2, available)
    assert at_2.name == REAL and at_2.reason.endswith("swiftrep-light has no x2")
    assert decide(jpeg, 3, available).name == CLEAN  # only the flagship has x3


def test_an_auto_upscaler_runs_the_model_it_picks_per_image(clean_lr):
    auto = load("auto", 4, device="cpu", precision="fp32")
    jpeg = read_image(_jpeg_bytes(clean_lr, 50))
    engine, choice = auto.pick(jpeg)
    assert (engine.name, choice.name) == (LIGHT, LIGHT) and auto.is_auto and not engine.is_auto
    light = load(LIGHT, 4, device="cpu", precision="fp32")
    assert np.array_equal(auto.upscale_image_data(jpeg).pixels, light.upscale_image_data(jpeg).pixels)
    clean = ImageData(pixels=clean_lr)
    assert auto.pick(clean)[0].name == CLEAN
    assert auto.upscale(clean_lr).shape == (clean_lr.shape[0] * 4, clean_lr.shape[1] * 4, 3)
    with pytest.raises(SuperresError, match="no strength"):
        load("auto", 4, strength=0.5)


def test_the_cli_says_which_model_each_file_got_and_why(clean_lr, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "web.jpg").write_bytes(_jpeg_bytes(clean_lr, 40))
    write_image(photos / "render.png", ImageData(pixels=clean_lr))
    assert main(["upscale", str(photos), "-m", "auto", "-o", str(tmp_path / "out"), "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "web_x4.jpg (72x72 -> 288x288, auto chose swiftrep-light: JPEG quality 40, below 85," in out
    assert "render_x4.png (72x72 -> 288x288, auto chose swiftrep: clean: noise sigma" in out
    assert read_image(tmp_path / "out" / "web_x4.jpg").size == (288, 288)


def test_eval_scores_auto_with_the_model_chosen_for_each_image(set5, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "bird.png").write_bytes((set5 / "bird.png").read_bytes())
    rows = {}
    for model in ("auto", LIGHT):
        assert main(["eval", "-m", model, "--data", str(data), "--degrade", "jpeg40", "--format", "json", "--device", "cpu"]) == 0
        rows[model] = json.loads(capsys.readouterr().out)[0]["images"][0]
    assert rows["auto"]["model"] == LIGHT and "model" not in rows[LIGHT]
    assert rows["auto"]["psnr"] == rows[LIGHT]["psnr"]  # the same model on the same LR: the same score
    assert main(["eval", "-m", "auto", "--data", str(data), "--per-image", "--device", "cpu"]) == 0
    assert "bird (swiftrep)" in capsys.readouterr().out  # clean bicubic inputs keep the flagship


def test_auto_model_loads_each_model_once(clean_lr):
    loaded = []

    def fake_load(name, scale):
        import torch

        loaded.append(name)
        return torch.nn.Identity()

    auto = AutoModel(4, load=fake_load)
    for _ in range(2):
        auto.for_image(clean_lr)
        auto.for_image(clean_lr, _jpeg_bytes(clean_lr, 40))
    assert loaded == [CLEAN, LIGHT]


def test_sixteen_bit_data_keeps_the_flagship():
    # A 16-bit frame (a scan, a microscope's) with a noise the light model would take away from a photo.
    rng = np.random.default_rng(0)
    frame = np.clip(30000 + rng.normal(0, 3000, (64, 64, 1)), 0, 65535).astype(np.uint16)
    choice = choose_model(frame, 4)
    assert choice.name == CLEAN and choice.reason.startswith("16-bit")
    assert choose_model(frame.astype(np.float32) / 65535, 4).name != CLEAN  # the same noise as a float photo: not kept
    # A 16-bit PIL image is measured as upscaling reads it, at 16 bits (not clipped to 8).
    from PIL import Image

    image = Image.fromarray(frame[..., 0])
    assert image.mode == "I;16" and choose_model(image, 4).reason.startswith("16-bit")
