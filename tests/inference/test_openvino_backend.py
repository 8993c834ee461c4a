"""--backend openvino: the exported graph compiled by OpenVINO runs through the tiling engine
to PyTorch's numbers in fp32, close to them in bf16, and says what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from superres.cli import main
from superres.errors import SuperresError
from superres.inference.runners import OpenVinoRunner
from superres.inference.upscaler import Upscaler
from superres.models import load_for_scale

pytest.importorskip("openvino", reason="the OpenVINO backend needs the openvino extra: pip install 'superres[openvino]'")


@pytest.mark.parametrize("name, scale", [("swiftrep", 2), ("fsrcnn", 4)])
def test_openvino_matches_pytorch_through_the_tiles(name, scale):
    model = load_for_scale(name, scale)
    image = np.random.default_rng(0).random((45, 70, 3)).astype(np.float32)
    options = dict(scale=scale, name=name, tile=32, tile_overlap=12)
    expected = Upscaler(model, precision="fp32", **options).upscale(image)
    upscaler = Upscaler(model, backend="openvino", precision="fp32", threads=1, **options)
    assert isinstance(upscaler.runner, OpenVinoRunner) and upscaler.device.type == "cpu"
    np.testing.assert_allclose(upscaler.upscale(image), expected, atol=1e-4)  # tiles of two sizes, one compiled graph


def test_bf16_is_close_and_fp16_is_refused():
    model = load_for_scale("swiftrep", 2)
    image = np.random.default_rng(1).random((30, 30, 3)).astype(np.float32)
    expected = Upscaler(model, scale=2, name="swiftrep", tile=0, precision="fp32").upscale(image)
    bf16 = Upscaler(model, scale=2, name="swiftrep", tile=0, backend="openvino", precision="bf16")
    assert bf16.precision == "bf16"
    assert 0 < np.max(np.abs(bf16.upscale(image) - expected)) < 0.03
    with pytest.raises(SuperresError, match="OpenVINO backend runs in fp32 or bf16, not fp16"):
        Upscaler(model, scale=2, name="swiftrep", backend="openvino", precision="fp16")


def test_upscale_command_with_openvino(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.random.default_rng(2).integers(0, 256, (16, 24, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-m", "espcn", "-s", "2", "--backend", "openvino", "-o", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "x_x2.png").size == (48, 32)
