"""``superres explain``: the heatmap and raw values written, the numbers printed, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from superres.cli import main
from superres.imaging import ImageData, read_image, write_image


@pytest.fixture
def photo(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    return write_image(tmp_path / "photo.png", ImageData(pixels=pixels))


@pytest.fixture(autouse=True)
def _keep_threads():
    # The command sets PyTorch's (process-wide) thread count; put back what the suite uses.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_writes_heatmap_and_values_and_prints_the_numbers(photo, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["explain", str(photo), "--box", "16,12,8,8", "-m", "espcn", "-s", "2", "-o", str(out), "--steps", "4"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    heatmap = read_image(out / "photo_espcn_x2_lam.png")
    assert heatmap.size == (20, 24) and heatmap.pixels.shape[2] == 3
    values = np.load(out / "photo_espcn_x2_lam.npy")
    assert values.shape == (20, 24) and values.dtype == np.float32
    assert np.all(values[:, :2] == 0) and np.abs(values[6:10, 8:12]).sum() > 0  # ESPCN reaches 4 + 1 pixels
    assert "Diffusion Index" in printed and "outside the box's input area (8,6 4x4)" in printed


def test_json_output(photo, tmp_path, capsys):
    args = ["explain", str(photo), "--box", "0,0,10,10", "-m", "bicubic", "-s", "3", "-o", str(tmp_path), "--steps", "2", "--json"]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "bicubic" and info["scale"] == 3 and info["steps"] == 2
    assert info["box"] == {"x": 0, "y": 0, "width": 10, "height": 10}
    assert 0 <= info["diffusion_index"] <= 100 and 0 <= info["outside_share"] <= 1
    assert info["values"].endswith("photo_bicubic_x3_lam.npy")


@pytest.mark.parametrize(
    "box,message",
    [("1,2,3", "X,Y,W,H"), ("90,0,8,8", "not inside the 96x80 output"), ("0,0,1,1", "too small")],
)
def test_bad_box_is_one_line(photo, tmp_path, capsys, box, message):
    assert main(["explain", str(photo), "--box", box, "-m", "bicubic", "-s", "4", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("superres: error:") and message in err and "\n" not in err
    assert not list(tmp_path.glob("*_lam.*"))


def test_unreadable_image_and_unknown_model(tmp_path, photo, capsys):
    (tmp_path / "notes.png").write_text("no pixels here")
    assert main(["explain", str(tmp_path / "notes.png"), "--box", "0,0,4,4", "-m", "bicubic"]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["explain", str(photo), "--box", "0,0,4,4", "-m", "no-such-model"]) == 1
    assert "neither a registered model nor a file" in capsys.readouterr().err
