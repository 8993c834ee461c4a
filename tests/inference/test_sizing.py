"""Any output size: the plan gives exactly the asked size, the model scale is the measured
choice, and every interface (Python API, CLI, video) returns exactly that size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.errors import SuperresError
from superres.imaging import ImageData, read_image, write_image
from superres.imaging.resize import imresize
from superres.inference import Upscaler, load
from superres.inference.sizing import OutputSize, choose_model_scale, fit_planes, parse_size
from superres.metrics import psnr
from superres.models import create


@pytest.mark.parametrize(
    "size, expected",
    [
        (OutputSize(scale=1.5), (45, 62)),  # 41 * 1.5 = 61.5: halves round up
        (OutputSize(scale=2.5), (75, 103)),
        (OutputSize(width=100), (73, 100)),
        (OutputSize(height=45), (45, 62)),
        (OutputSize(width=64, height=64), (64, 64)),  # cover: exactly the box
        (OutputSize(width=64, height=64, fit="stretch"), (64, 64)),
        (OutputSize(width=64, height=64, fit="contain"), (47, 64)),  # inside the box, aspect kept
        (OutputSize(width=30, height=40), (40, 30)),  # one side shorter: cover scales by the other, trims
    ],
)
def test_the_plan_has_the_asked_size(size, expected):
    assert size.plan(30, 41).size == expected


def test_cover_is_exact_and_centred_for_any_aspect():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w, bw, bh = (int(v) for v in rng.integers(1, 400, 4))
        if max(bh / h, bw / w) <= 1:  # no side grows: refused (test_output_limits.py)
            with pytest.raises(SuperresError, match="no larger"):
                OutputSize(width=bw, height=bh).plan(h, w)
            continue
        plan = OutputSize(width=bw, height=bh).plan(h, w)
        top, left, ch, cw = plan.crop
        assert (ch, cw) == (bh, bw) and plan.resized[0] >= bh and plan.resized[1] >= bw
        assert abs((plan.resized[0] - bh) - 2 * top) <= 1 and abs((plan.resized[1] - bw) - 2 * left) <= 1


@pytest.mark.parametrize(
    "factor, scales, expected",
    [(1.5, (2, 3, 4), 2), (2.5, (2, 3, 4), 3), (3.0, (2, 3, 4), 3), (3.0, (2, 4), 4), (5.0, (2, 3, 4), 4), (0.5, (2, 4), 2), (2.0, (4,), 4)],
)
def test_the_model_scale_is_exact_else_the_next_above_else_the_largest(factor, scales, expected):
    assert choose_model_scale(factor, scales) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": 1.0}, "above 1"),
        ({"scale": 2.0, "width": 10}, "not both"),
        ({}, "give a scale, a width or a height"),
        ({"width": 0}, "width must be"),
        ({"height": 2.5}, "height must be"),
        ({"width": 9, "fit": "squash"}, "unknown fit"),
    ],
)
def test_bad_sizes_are_one_line_errors(kwargs, message):
    with pytest.raises(SuperresError, match=message):
        OutputSize(**kwargs)


def test_parse_size():
    assert parse_size("1920x1080") == (1920, 1080) and parse_size(" 640 X 480 ") == (640, 480)
    with pytest.raises(SuperresError, match="WIDTHxHEIGHT"):
        parse_size("1920")


def test_fit_planes_resizes_then_crops():
    planes = np.random.default_rng(1).random((3, 20, 30), dtype=np.float32)  # a x2 model's output of 10x15
    plan = OutputSize(width=24, height=24).plan(10, 15)
    assert fit_planes(planes, plan).shape == (3, 24, 24)
    assert fit_planes(planes[None], plan).shape == (1, 3, 24, 24)


@pytest.fixture(scope="module")
def espcn15():
    return load("espcn", 1.5, tile=0)


def test_a_fractional_scale_runs_the_model_above_and_keeps_kinds_and_alpha(espcn15):
    assert espcn15.scale == 2 and espcn15.output == OutputSize(scale=1.5)
    rgba = np.random.default_rng(2).integers(0, 256, (30, 41, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    out = espcn15.upscale(rgba)
    assert out.shape == (45, 62, 4) and np.all(out[..., 3] == 255)
    pil = espcn15.upscale(Image.fromarray(rgba[..., :3]))
    assert pil.size == (62, 45)
    data = espcn15.upscale_image_data(ImageData(pixels=rgba[..., :3].astype(np.uint16) * 257))
    assert data.size == (45, 62) and data.pixels.dtype == np.uint16


def test_a_width_loads_each_model_scale_an_image_needs():
    up = load("espcn", width=50, tile=0)
    assert up.upscale(np.zeros((20, 20, 3), np.uint8)).shape == (50, 50, 3)  # x2.5: the x3 model
    assert up.upscale(np.zeros((40, 30, 3), np.uint8)).shape == (67, 50, 3)  # x1.67: the x2 model
    assert sorted(up._engines) == [2, 3, 4]  # x4 first (the largest), then those two


def test_above_every_model_scale_the_largest_runs_and_bicubic_makes_up_the_rest():
    up = load("espcn", 5, tile=0)
    assert up.scale == 4 and up._engine_for(5.0).scale == 4
    assert up.upscale(np.zeros((8, 10, 3), np.uint8)).shape == (40, 50, 3)


def test_a_bare_module_reaches_any_size_with_its_own_scale():
    up = Upscaler(create("bicubic", scale=2), scale=2, name="bicubic", output=OutputSize(width=7, height=9, fit="stretch"))
    assert up.scales == (2,) and up.upscale(np.zeros((4, 4), np.uint8)).shape == (9, 7)


def test_x1_5_beats_bicubic_by_more_than_1_db(set14):
    # The README's table: the model above (x2) then an antialiased downscale, on a Set14 crop.
    from superres.data.datasets import list_images

    hr = read_image(list_images(set14)[0]).pixels[:96, :96, :3]
    lr = imresize(hr, size=(64, 64))
    up = load("swiftrep", 1.5, tile=0)
    ours = up.upscale(lr)
    assert ours.shape == hr.shape
    assert psnr(ours, hr, shave=2) > psnr(imresize(lr, size=(96, 96)), hr, shave=2) + 1.0


def test_the_command_writes_exactly_the_asked_size(tmp_path, capsys):
    write_image(tmp_path / "in.png", ImageData(pixels=np.random.default_rng(3).integers(0, 256, (30, 41, 3), dtype=np.uint8)))
    cases = [
        (["-s", "1.5"], "in_x1.5.png", (45, 62)),
        (["--size", "64x48"], "in_64x48.png", (48, 64)),
        (["--size", "64x64", "--fit", "contain"], "in_64x64.png", (47, 64)),
        (["--width", "100"], "in_w100.png", (73, 100)),
        (["--height", "45", "--ensemble"], "in_h45.png", (45, 62)),
    ]
    for arguments, name, size in cases:
        assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "-m", "espcn", *arguments]) == 0
        assert read_image(tmp_path / "out" / name).size == size
    assert main(["upscale", str(tmp_path / "in.png"), "-m", "espcn", "--size", "64x48", "--width", "9"]) == 1
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["upscale", str(tmp_path / "in.png"), "-s", "0.5"])


def test_a_video_comes_out_at_exactly_the_asked_size(tmp_path):
    from tests.inference.test_video import _make_clip

    from superres.inference.video import upscale_video

    _make_clip(tmp_path / "clip.mp4")
    result = upscale_video(load("espcn", width=48, tile=0), tmp_path / "clip.mp4", tmp_path / "out.mp4", progress=False)
    assert result.size == (36, 48) and result.frames == 12
    with pytest.raises(SuperresError, match="must be even"):
        upscale_video(load("bicubic", width=47), tmp_path / "clip.mp4", tmp_path / "odd.mp4", progress=False)
