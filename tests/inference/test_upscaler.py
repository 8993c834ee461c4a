"""The Python API: every kind of image comes back as the same kind, 16-bit and grayscale
survive, metadata is carried, models are folded for inference, and errors say what to do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import superres
from superres.errors import SuperresError
from superres.imaging import ImageData, read_image, write_image
from superres.inference import DEFAULT_MODEL, Upscaler, load
from superres.models import create, save

H, W = 12, 10


@pytest.fixture(scope="module")
def bicubic():
    return load("bicubic", 2)


def _ramp(dtype=np.uint8, channels=3) -> np.ndarray:
    peak = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    y, x = np.mgrid[0:H, 0:W]
    plane = (y * W + x) / (H * W - 1) * peak
    array = np.stack([plane, plane[::-1], np.full_like(plane, peak / 3)][:channels], axis=-1)
    return array.astype(dtype) if dtype == np.float32 else np.rint(array).astype(dtype)


def test_the_top_level_names():
    assert superres.load is load and superres.Upscaler is Upscaler
    assert DEFAULT_MODEL == "swiftrep"


@pytest.mark.parametrize(
    "array",
    [
        _ramp()[..., 0],  # HxW uint8
        _ramp(),  # HxWx3 uint8
        _ramp(np.uint16),
        _ramp(np.uint16, channels=1),
        _ramp(np.float32),
        _ramp(np.float32).astype(np.float64),
        np.concatenate([_ramp(), np.full((H, W, 1), 200, np.uint8)], axis=2),  # RGBA
        np.concatenate([_ramp(channels=1), np.full((H, W, 1), 9, np.uint8)], axis=2),  # grey + alpha
    ],
    ids=["gray8", "rgb8", "rgb16", "gray16x1", "float32", "float64", "rgba8", "la8"],
)
def test_numpy_comes_back_as_numpy_of_the_same_dtype_and_layout(bicubic, array):
    out = bicubic.upscale(array)
    assert isinstance(out, np.ndarray) and out.dtype == array.dtype
    assert out.shape == (2 * H, 2 * W) + array.shape[2:]
    # The values are upscaled in their own range (a uint16 image is not read as 8-bit).
    assert abs(float(out.mean()) - float(array.mean())) < 0.02 * (np.iinfo(array.dtype).max if array.dtype.kind == "u" else 1)
    if array.ndim == 3 and array.shape[2] in (2, 4):
        assert np.all(out[..., -1] == array[0, 0, -1])  # constant alpha stays exactly constant


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16", "I", "F"])
def test_pil_comes_back_as_pil_of_the_same_mode(bicubic, mode):
    rgb = Image.fromarray(_ramp())
    image = rgb.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(_ramp(np.uint16)[..., 0]).convert(mode)
    image.info["icc_profile"] = b"profile"
    out = bicubic.upscale(image)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == (2 * W, 2 * H)
    assert out.info["icc_profile"] == b"profile"


def test_pil_palette_image_comes_back_as_rgb(bicubic):
    out = bicubic.upscale(Image.fromarray(_ramp()).convert("P"))
    assert out.mode == "RGB" and out.size == (2 * W, 2 * H)


@pytest.mark.parametrize("shape", [(3, H, W), (2, 3, H, W), (1, H, W), (4, H, W)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_comes_back_as_tensor(bicubic, shape, dtype):
    x = torch.rand(shape, dtype=dtype)
    out = bicubic.upscale(x)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == x.device
    assert out.shape == shape[:-2] + (2 * H, 2 * W)
    assert 0 <= out.min() and out.max() <= 1


def test_unsupported_kinds_are_refused(bicubic):
    with pytest.raises(TypeError):
        bicubic.upscale([[1, 2], [3, 4]])
    with pytest.raises(TypeError):
        bicubic.upscale(np.zeros((4, 4), dtype=np.int8))
    with pytest.raises(TypeError):
        bicubic.upscale(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_image_data_keeps_16_bits_grayscale_alpha_and_metadata(bicubic, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any other profile will do for grey
    exif = Image.Exif()
    exif[0x010F] = "superres-test"  # Make
    for pixels, alpha, profile in [
        (_ramp(np.uint16), np.full((H, W), 60000, np.uint16), icc),
        (_ramp(np.uint16, channels=1), None, None),
        (_ramp(channels=1), np.full((H, W), 128, np.uint8), grey),
    ]:
        image = ImageData(pixels=pixels, alpha=alpha, icc_profile=profile, exif=exif.tobytes(), format="PNG")
        out = bicubic.upscale_image_data(image)
        assert out.pixels.dtype == pixels.dtype and out.pixels.shape == (2 * H, 2 * W, pixels.shape[2])
        assert (out.alpha is None) == (alpha is None)
        assert out.icc_profile == profile and out.exif == image.exif and out.format == "PNG"
        if alpha is not None:
            assert out.alpha.dtype == alpha.dtype and np.all(out.alpha == alpha[0, 0])
    # And through a file: 16-bit RGB PNG in, 16-bit RGB PNG out, with its profile.
    path = write_image(tmp_path / "deep.png", ImageData(pixels=_ramp(np.uint16), icc_profile=icc))
    out = bicubic.upscale_image_data(read_image(path))
    back = read_image(write_image(tmp_path / "deep_x2.png", out))
    assert back.pixels.dtype == np.uint16 and back.pixels.shape == (2 * H, 2 * W, 3) and back.icc_profile == icc
    assert len(np.unique(back.pixels)) > 256  # really 16-bit, not 8-bit values widened


def test_grayscale_runs_through_an_rgb_model_as_one_channel():
    model = create("espcn", scale=2)
    upscaler = Upscaler(model, scale=2, name="espcn")
    grey = _ramp(channels=1).astype(np.float32) / 255
    out = upscaler.upscale(grey)
    assert out.shape == (2 * H, 2 * W, 1)
    with torch.no_grad():
        expected = model(torch.from_numpy(grey).permute(2, 0, 1)[None].repeat(1, 3, 1, 1)).mean(1)[0].clamp(0, 1).numpy()
    np.testing.assert_allclose(out[..., 0], expected, atol=1e-6)


def test_reparameterizes_a_copy_for_inference():
    model = create("swiftrep", scale=2)
    upscaler = Upscaler(model, scale=2, name="swiftrep")
    assert not model.reparameterized and upscaler.runner.model.reparameterized
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        expected = model.eval()(x).clamp(0, 1)
    np.testing.assert_allclose(upscaler.upscale(x).numpy(), expected.numpy(), atol=1e-5)


class _OverflowsInLowPrecision(torch.nn.Module):
    """Nearest-neighbour x2 that returns inf when autocast hands it bf16 (as fp16 overflows do)."""

    scale = 2

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        torch.nn.init.dirac_(self.conv.weight)
        torch.nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        y = self.conv(x).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        return y * float("inf") if y.dtype == torch.bfloat16 else y


def test_low_precision_falls_back_to_fp32_when_the_output_is_not_finite():
    upscaler = Upscaler(_OverflowsInLowPrecision(), scale=2, name="overflow", precision="bf16")
    image = _ramp(np.float32)
    with pytest.warns(RuntimeWarning, match="not finite"):
        out = upscaler.upscale(image)
    assert upscaler.fell_back_to_fp32
    np.testing.assert_allclose(out, image.repeat(2, 0).repeat(2, 1), atol=1e-6)


def test_bf16_on_the_cpu_stays_close_to_fp32():
    model = create("espcn", scale=2)
    image = _ramp(np.float32)
    fp32 = Upscaler(model, scale=2, name="espcn").upscale(image)
    bf16 = Upscaler(model, scale=2, name="espcn", precision="bf16").upscale(image)
    assert np.abs(bf16 - fp32).max() < 0.05


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "fp8"}, "unknown precision"),
        ({"precision": "fp16", "device": "cpu"}, "needs a GPU"),
        ({"backend": "tensorrt"}, "unknown backend"),
        ({"backend": "onnx", "precision": "bf16"}, "ONNX backend runs in fp32"),
        ({"tile": 8}, "tile must be 0"),
        ({"tile": -1}, "tile must be 0"),
        ({"batch_size": 0}, "batch size"),
        ({"scale": 3}, "x2 model, not x3"),
    ],
)
def test_bad_options_say_what_to_do(options, message):
    options = {"scale": 2, "name": "espcn", **options}
    with pytest.raises(SuperresError, match=message):
        Upscaler(create("espcn", scale=2), **options)


def test_load_default_model_without_weights_is_a_clear_error():
    from superres.models import pretrained_path

    if pretrained_path(DEFAULT_MODEL, 4).is_file():
        pytest.skip("the default model's weights are shipped")
    with pytest.raises(SuperresError, match="default model 'swiftrep' has no shipped weights for x4"):
        load()


def test_load_a_checkpoint(tmp_path):
    model = create("swiftrep", scale=2)
    path = save(model, tmp_path / "mine.safetensors", arch="swiftrep", scale=2, hyperparameters=model.superres_hyperparameters)
    upscaler = load(path, scale=2, tile=0)
    assert upscaler.name == "mine" and upscaler.scale == 2
    with pytest.raises(SuperresError, match="x2 model, not x4"):
        load(path, scale=4)
    with pytest.raises(SuperresError, match="neither a registered model nor a file"):
        load(tmp_path / "missing.safetensors", scale=2)


def test_tiles_follow_the_free_memory(monkeypatch):
    from superres.inference import upscaler as module

    upscaler = Upscaler(create("espcn", scale=2), scale=2, name="espcn", device="cpu")
    monkeypatch.setattr(module, "available_memory", lambda device: 64 * 2**30)
    assert upscaler.tiling_for(300, 400)[0] == 0  # fits: whole
    assert upscaler.tiling_for(3000, 4000) == (module._CPU_MAX_TILE, 1)  # the CPU cap; one tile at a time
    monkeypatch.setattr(module, "available_memory", lambda device: 50 * 2**20)
    tile, batch = upscaler.tiling_for(300, 400)
    assert 64 <= tile < 300 and batch == 1
    assert tile * tile * upscaler.bytes_per_pixel <= 25 * 2**20
    # Video frames that fit whole are batched.
    monkeypatch.setattr(module, "available_memory", lambda device: 64 * 2**30)
    assert upscaler.tiling_for(24, 32) == (0, 4)


def test_the_callers_model_is_left_as_it_was():
    model = create("espcn", scale=2).train()
    Upscaler(model, scale=2, name="espcn", backend="onnx")
    Upscaler(model, scale=2, name="espcn")
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_threads_apply_to_pytorch_too():
    # One place sets PyTorch's CPU threads for inference: the CLI and the zoo report pass them here.
    before = torch.get_num_threads()
    try:
        Upscaler(create("bicubic", scale=2), scale=2, name="bicubic", threads=before + 1)
        assert torch.get_num_threads() == before + 1
        Upscaler(create("bicubic", scale=2), scale=2, name="bicubic")  # None leaves them
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)
