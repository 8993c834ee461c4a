"""ONNX export and the ONNX Runtime backend: parity with PyTorch at any input size, the tiling
engine running either backend alike, and models that cannot export are refused clearly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from superres.cli import main
from superres.errors import SuperresError
from superres.inference.onnx import OnnxRunner, export_onnx, max_abs_difference
from superres.inference.upscaler import Upscaler
from superres.models import create, save


def _model(name: str, scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create(name, scale=scale)
    if name == "swiftrep":  # make the residual path matter (it starts near zero)
        torch.nn.init.normal_(model.tail.weight, std=0.02)
    return model


@pytest.mark.parametrize("name", ["swiftrep", "espcn", "fsrcnn"])
@pytest.mark.parametrize("scale", [2, 4])
def test_export_matches_pytorch_at_any_size(name, scale, tmp_path):
    model = _model(name, scale)
    path = tmp_path / f"{name}.onnx"
    data = export_onnx(model, path, scale=scale, name=name)
    assert path.read_bytes() == data
    graph = onnx.load(path)
    assert graph.opset_import[0].version == 17
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert {k: props[k] for k in ("superres.arch", "superres.scale", "superres.input")} == {"superres.arch": name, "superres.scale": str(scale), "superres.input": "RGB in [0, 1]"}
    for size in [(17, 29), (40, 24)]:
        assert max_abs_difference(model, data, size=size) <= 1e-4


def test_models_that_freeze_their_input_size_are_refused():
    with pytest.raises(SuperresError, match="cannot export 'bicubic' to ONNX.*dynamic sizes"):
        export_onnx(create("bicubic", scale=2), name="bicubic")


def test_onnx_backend_through_the_tiling_engine_matches_torch():
    model = _model("swiftrep", 2)
    image = np.random.default_rng(0).random((50, 60, 3)).astype(np.float32)
    options = dict(scale=2, name="swiftrep", tile=32, tile_overlap=12)
    torch_out = Upscaler(model, **options).upscale(image)
    upscaler = Upscaler(model, backend="onnx", threads=1, **options)
    assert isinstance(upscaler.runner, OnnxRunner)
    assert upscaler.runner.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(upscaler.upscale(image), torch_out, atol=1e-4)


def test_export_onnx_command(tmp_path, capsys):
    model = _model("espcn", 3)
    checkpoint = save(model, tmp_path / "espcn3.safetensors", arch="espcn", scale=3, hyperparameters=model.superres_hyperparameters)
    out = tmp_path / "model.onnx"
    assert main(["export-onnx", str(checkpoint), "-s", "3", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert max_abs_difference(model, out) <= 1e-4
    assert main(["export-onnx", "bicubic", "-s", "2", "-o", str(tmp_path / "b.onnx")]) == 1
    assert "cannot export 'bicubic'" in capsys.readouterr().err
    assert not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize("channels, says", [(3, "RGB in [0, 1]"), (1, "Y / 255 of BT.601 YCbCr")])
def test_an_exported_graph_says_what_it_takes(tmp_path, capsys, channels, says):
    model = create("fsrcnn", scale=2, channels=channels).eval()
    checkpoint = save(model, tmp_path / "f.safetensors", arch="fsrcnn", scale=2, hyperparameters=model.superres_hyperparameters)
    out = tmp_path / "f.onnx"
    assert main(["export-onnx", str(checkpoint), "-s", "2", "-o", str(out)]) == 0
    assert f"input: (B, {channels}, H, W), {says}" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["superres.input"].startswith(says) and props["superres.scale"] == "2"


def test_an_exported_graph_is_a_model_but_cannot_be_exported_again(tmp_path, capsys):
    model = _model("espcn", 2)
    checkpoint = save(model, tmp_path / "e.safetensors", arch="espcn", scale=2, hyperparameters=model.superres_hyperparameters)
    graph = tmp_path / "e.onnx"
    assert main(["export-onnx", str(checkpoint), "-s", "2", "-o", str(graph)]) == 0
    capsys.readouterr()
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    # The graph records its scale and that it takes Y: upscale needs neither -s nor the weights.
    assert main(["upscale", str(image), "-m", str(graph), "--backend", "onnx", "-o", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "x_x2.png").size == (16, 16)
    assert main(["export-onnx", str(graph), "-s", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "it is an ONNX graph already; export the weights it came from" in err, err
