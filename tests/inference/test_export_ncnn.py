"""ncnn export: every shipped model, at every shipped scale, run by the ncnn runtime itself
(what realesrgan-ncnn-vulkan, Upscayl and chaiNNer load) agrees with superres's PyTorch
upscaler on Set5, and superres's own reader loads the files back to the runtime's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from superres.cli import main
from superres.errors import SuperresError
from superres.inference.export_ncnn import LumaAsRgb, export_ncnn, ncnn_file_names
from superres.inference.upscaler import Upscaler
from superres.models import list_specs, load, load_for_scale
from superres.models.ncnn import NcnnGraphModule, NcnnRuntime
from superres.models.srvggnet import SRVGGNetCompact

SHIPPED = [(spec.name, scale) for spec in list_specs(generators_only=True) for scale in spec.shipped_scales()]
CROP = 128  # Set5 crops for the bulk: every model and scale within the test budget on two cores


def _needs_ncnn():
    pytest.importorskip("ncnn", reason="the ncnn runtime is not installed: pip install 'superres[ncnn]'")


def _as_chainner_reads_it(lines: list[str]) -> tuple[int, int]:
    # chaiNNer does not run a file to learn its scale: it multiplies the PixelShuffle factors,
    # Deconvolution strides and the Interp factors not followed by an add (the anchor of
    # Real-ESRGAN's compact models), and divides by convolution strides; the output channels
    # are the last convolution's, divided by the square of the pixel shuffles' factor.
    scale, shuffle, last_conv = 1.0, 1, 0
    layers = [line.split() for line in lines[2:]]
    for index, fields in enumerate(layers):
        params = dict(item.split("=", 1) for item in fields[4 + int(fields[2]) + int(fields[3]) :])
        if fields[0] == "PixelShuffle":
            scale *= int(params["0"])
            shuffle *= int(params["0"])
        elif fields[0] == "Deconvolution":
            scale *= int(params.get("3", 1))
        elif fields[0] == "Convolution":
            scale /= int(params.get("3", 1))
            last_conv = int(params["0"])
        elif fields[0] == "Interp" and not (index + 1 < len(layers) and layers[index + 1][0] == "BinaryOp" and "0=0" in layers[index + 1]):
            scale *= float(params["1"])
    return int(scale), last_conv // shuffle**2


def _psnr_8bit(a: np.ndarray, b: np.ndarray) -> float:
    a, b = (np.round(np.clip(x, 0, 1) * 255).astype(np.float64) for x in (a, b))
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def set5_crops(set5) -> list[np.ndarray]:
    crops = []
    for path in sorted(Path(set5).glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))[:CROP, :CROP]
        crops.append(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    return crops


def test_every_shipped_model_is_exported():
    names = {name for name, _ in SHIPPED}
    assert {"swiftrep", "espcn", "fsrcnn", "swiftrep-light", "swiftrep-real", "swiftrep-real-gan"} <= names
    assert len(SHIPPED) >= 13


@pytest.mark.parametrize("name, scale", SHIPPED, ids=[f"{n}-x{s}" for n, s in SHIPPED])
def test_the_ncnn_runtime_agrees_with_pytorch_on_set5(name, scale, set5_crops, tmp_path):
    _needs_ncnn()
    model = load_for_scale(name, scale)
    param, weights = export_ncnn(model, tmp_path, name=name, scale=scale)
    assert (param.name, weights.name) == ncnn_file_names(name, scale) == (f"{name}-x{scale}.param", f"{name}-x{scale}.bin")
    lines = param.read_text().splitlines()
    assert lines[2].split()[:5] == ["Input", "input", "0", "1", "data"]
    assert any(line.split()[4 + int(line.split()[2])] == "output" for line in lines[2:])  # the last blob is 'output'

    assert _as_chainner_reads_it(lines) == (scale, 3)

    runtime = NcnnRuntime(param, threads=1)  # two OpenMP threads ran 10x slower on a busy 2-core machine
    upscaler = Upscaler(model, scale=scale, name=name, tile=0, precision="fp32")
    # superres's reader: a graph of known layers, run layer by layer; an architecture it
    # recognises (an exported SRVGGNetCompact) comes back as that architecture.
    ours = load(param)
    assert isinstance(ours, (NcnnGraphModule, SRVGGNetCompact)) and ours.scale == scale
    assert isinstance(ours, SRVGGNetCompact) == isinstance(model, SRVGGNetCompact)
    for index, image in enumerate(set5_crops):
        got = runtime(image)
        assert got.shape == (3, image.shape[1] * scale, image.shape[2] * scale)
        expected, _ = upscaler.upscale_planes(image)
        assert _psnr_8bit(got, expected) >= 50.0, f"{name} x{scale}, Set5 image {index}"
        if index == 0:  # on a corner: the same numbers at any size, in a fraction of the time
            corner = np.ascontiguousarray(image[:, :32, :32])
            with torch.inference_mode():
                read_back = ours(torch.from_numpy(corner)[None])[0].numpy()
            assert np.max(np.abs(read_back - runtime(corner))) <= 1e-4


def test_a_luma_model_differs_from_the_upscaler_only_at_the_border():
    # ncnn can replicate an edge but not mirror it as MATLAB's bicubic does: the chroma
    # of the outer two LR pixels differs a little, everything inside is the same.
    scale = 3
    model = load_for_scale("espcn", scale)
    image = np.random.default_rng(0).random((3, 30, 40)).astype(np.float32)
    expected, _ = Upscaler(model, scale=scale, name="espcn", tile=0, precision="fp32").upscale_planes(image)
    with torch.inference_mode():
        wrapped = LumaAsRgb(model.eval(), scale=scale)(torch.from_numpy(image)[None])[0].clamp(0, 1).numpy()
    inner = (slice(None), slice(3 * scale, -3 * scale), slice(3 * scale, -3 * scale))
    assert np.max(np.abs(wrapped[inner] - expected[inner])) < 1e-5
    border = np.max(np.abs(wrapped - expected))
    assert 0 < border < 0.05


class _Mean(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 2
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x - x.mean(dim=(2, 3), keepdim=True)))


class _Norm(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 2
        self.norm = nn.GroupNorm(1, 3)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        return self.up(self.norm(x))


@pytest.mark.parametrize("model, says", [(_Mean(), "operation 'mean'"), (_Norm(), "module 'norm' (GroupNorm)")])
def test_an_operation_ncnn_lacks_is_refused_naming_it(model, says, tmp_path):
    with pytest.raises(SuperresError, match=re.escape(f"cannot export 'm' to ncnn: {says} has no ncnn layer")):
        export_ncnn(model, tmp_path, name="m", scale=2)
    assert list(tmp_path.iterdir()) == []


def test_export_command(tmp_path, capsys):
    assert main(["export", "espcn", "-s", "2", "--format", "ncnn", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "espcn-x2.param").is_file() and (tmp_path / "espcn-x2.bin").is_file()
    assert "-n espcn-x2 -s 2" in out
    assert load(tmp_path / "espcn-x2.param").scale == 2
    assert main(["export", "espcn", "-s", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--format ncnn or --format onnx" in err
    # An app's model folder that does not exist yet is made; a file in its place is refused.
    assert main(["export", "espcn", "-s", "2", "--format", "ncnn", "-o", str(tmp_path / "new" / "models")]) == 0
    assert (tmp_path / "new" / "models" / "espcn-x2.param").is_file()
    (tmp_path / "taken").write_text("a file")
    capsys.readouterr()
    assert main(["export", "espcn", "-s", "2", "--format", "ncnn", "-o", str(tmp_path / "taken")]) == 1
    assert "it is a file, not a folder" in capsys.readouterr().err
