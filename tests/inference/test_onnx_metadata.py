"""Self-describing ONNX graphs: what the metadata says, the fp16 variant against fp32 on Set5,
a superres graph used as a model without -s, and the ONNX Runtime script of docs/ONNX.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from superres import __version__
from superres.cli import main
from superres.data.datasets import load_benchmark
from superres.evaluate import score_images
from superres.inference.onnx import export_onnx
from superres.models import CheckpointError, load, load_for_scale, read_metadata
from superres.models.registry import pretrained_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    """SwiftRep x4 (the flagship, shipped weights) exported in fp32 and fp16."""
    folder = tmp_path_factory.mktemp("graphs")
    model = load_for_scale("swiftrep", 4)
    paths = {"fp32": folder / "swiftrep_x4.onnx", "fp16": folder / "swiftrep_x4_fp16.onnx"}
    for precision, path in paths.items():
        export_onnx(model, path, scale=4, name="swiftrep", fp16=precision == "fp16")
    return paths


def test_the_graph_describes_itself(graphs):
    props = {p.key: p.value for p in onnx.load(str(graphs["fp32"])).metadata_props}
    quality = read_metadata(pretrained_path("swiftrep", 4))["quality"]
    assert props == {
        "superres.arch": "swiftrep", "superres.name": "swiftrep", "superres.scale": "4",
        "superres.channel_order": "RGB", "superres.input_range": "0-1", "superres.input": "RGB in [0, 1]",
        "superres.precision": "fp32", "superres.version": __version__, "superres.license": "MIT",
        "superres.set5_psnr": str(quality["Set5"]["psnr"]), "superres.set14_psnr": str(quality["Set14"]["psnr"]),
    }
    graph = onnx.load(str(graphs["fp16"]))
    assert {p.key: p.value for p in graph.metadata_props}["superres.precision"] == "fp16"
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim] == ["batch", "", "height", "width"]
    assert graphs["fp16"].stat().st_size < 0.6 * graphs["fp32"].stat().st_size


def test_fp16_scores_within_0_05_db_of_fp32_on_set5(graphs, set5):
    items = load_benchmark(set5, 4)
    scores = {p: score_images(load(path), items, scale=4, dataset="Set5").psnr for p, path in graphs.items()}
    assert abs(scores["fp16"] - scores["fp32"]) <= 0.05, scores
    assert scores["fp32"] == pytest.approx(read_metadata(pretrained_path("swiftrep", 4))["quality"]["Set5"]["psnr"], abs=0.01)


def test_a_superres_graph_is_a_model_with_its_own_scale(graphs, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), np.uint8)).save(image)
    assert main(["upscale", str(image), "-m", str(graphs["fp16"]), "-o", str(tmp_path / "out")]) == 0  # no -s
    assert Image.open(tmp_path / "out" / "x_x4.png").size == (80, 48)
    capsys.readouterr()
    assert main(["export", str(graphs["fp32"]), "-s", "4", "--format", "ncnn", "-o", str(tmp_path)]) == 1
    assert "is an ONNX graph; export the weights it came from" in capsys.readouterr().err


def test_a_graph_without_superres_metadata_is_refused_in_one_line(graphs, tmp_path, capsys):
    graph = onnx.load(str(graphs["fp32"]))
    del graph.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(graph, str(foreign))
    with pytest.raises(CheckpointError, match="without superres's metadata"):
        load(foreign)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    assert main(["upscale", str(image), "-m", str(foreign), "-s", "4", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "run other .onnx files with ONNX Runtime directly" in err


def _doc_script() -> str:
    text = (REPO / "docs" / "ONNX.md").read_text()
    found = re.search(r"<!-- onnx-runtime-script[^>]*-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, "docs/ONNX.md lost its ONNX Runtime script"
    return found[1]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_onnx_runtime_script_in_the_docs_upscales(graphs, tmp_path, precision):
    script = _doc_script()
    assert len(script.strip().splitlines()) <= 11
    (tmp_path / "upscale_onnx.py").write_text(script)
    source = tmp_path / "in.png"
    pixels = np.random.default_rng(2).integers(0, 256, (10, 14, 3), np.uint8)
    Image.fromarray(pixels).save(source)
    done = subprocess.run(
        [sys.executable, "upscale_onnx.py", str(graphs[precision]), str(source), "out.png"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x4: 14x10 -> 56x40"
    # The same pixels as superres's own run of the graph.
    expected = load(graphs[precision])
    import torch

    with torch.inference_mode():
        ours = expected(torch.from_numpy(pixels.transpose(2, 0, 1)[None] / 255.0).float())[0].clamp(0, 1).numpy()
    got = np.asarray(Image.open(tmp_path / "out.png")).transpose(2, 0, 1) / 255.0
    assert np.max(np.abs(got - ours)) <= 1 / 255 + 1e-6
