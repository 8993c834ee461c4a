"""Precision chosen from measurement: the recorded bf16 change of each weight file, the
bf16 support the machine reports, and the int8 graphs shipped only where they cost <= 0.05 dB."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import superres
from superres.device import bf16_is_fast, cpu_capability, supports_bf16
from superres.errors import SuperresError
from superres.inference import Upscaler, load
from superres.inference.onnx import INT8_MAX_LOSS
from superres.inference.upscaler import AUTO_BF16_MAX_LOSS, _resolve_precision
from superres.models import create, pretrained_path, read_metadata, save
from superres.models.checkpoint import precision_change, update_metadata
from superres.models.registry import quantized_path
from superres.training.run import training_precision
from superres.zoo_report import shipped_models

CPU = torch.device("cpu")


def _recorded(change):
    return {"precision": {"bf16": {"Set5": change}}}


def test_auto_takes_bf16_only_for_a_small_recorded_change_on_a_fast_bf16_cpu(monkeypatch):
    monkeypatch.setattr("superres.inference.upscaler.bf16_is_fast", lambda kind: True)
    assert _resolve_precision("auto", CPU, "torch", _recorded(-0.006))[0] == "bf16"
    precision, why = _resolve_precision("auto", CPU, "torch", _recorded(-0.031))
    assert precision == "fp32" and "-0.031" in why
    precision, why = _resolve_precision("auto", CPU, "torch", {})
    assert precision == "fp32" and "no measured" in why
    monkeypatch.setattr("superres.inference.upscaler.bf16_is_fast", lambda kind: False)
    precision, why = _resolve_precision("auto", CPU, "torch", _recorded(-0.006))
    assert precision == "fp32" and "not fast" in why
    assert _resolve_precision("bf16", CPU, "torch", {})[0] == "bf16"  # asked for: as asked


def test_bf16_is_chosen_from_what_the_cpu_reports_never_from_a_timing(monkeypatch):
    fast = bf16_is_fast("cpu")
    assert fast == (supports_bf16(CPU) and torch.backends.cpu.get_cpu_capability().startswith("AVX512"))
    # The same answer however slow the machine is at the moment: two processes must agree,
    # so nothing is timed (a clock that fails would show it).
    def no_clock():
        raise AssertionError("bf16_is_fast must not time anything")

    monkeypatch.setattr(time, "perf_counter", no_clock)
    monkeypatch.setattr(time, "monotonic", no_clock)
    bf16_is_fast.cache_clear()
    assert bf16_is_fast("cpu") == fast
    assert cpu_capability().startswith(torch.backends.cpu.get_cpu_capability())


def test_a_bf16_recipe_falls_back_to_fp32_where_bf16_is_slow(monkeypatch, capsys):
    monkeypatch.setattr("superres.training.run.bf16_is_fast", lambda kind: False)
    assert training_precision("bf16-mixed", "cpu") == "32-true"
    assert "training in fp32" in capsys.readouterr().err.strip().splitlines()[-1]
    assert training_precision("32-true", "cpu") == "32-true"
    monkeypatch.setattr("superres.training.run.bf16_is_fast", lambda kind: True)
    assert training_precision("bf16-mixed", "cpu") == "bf16-mixed"


def _tensor_bytes(path) -> str:
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header :]).hexdigest()


def test_updating_metadata_leaves_the_tensors_byte_for_byte(tmp_path):
    path = tmp_path / "m.safetensors"
    save(create("espcn", scale=2, channels=1), path, arch="espcn", scale=2, hyperparameters={"channels": 1}, metadata={"quality": {"x": 1}})
    before = _tensor_bytes(path)
    update_metadata(path, {"precision": {"bf16": {"Set5": -0.002}}})
    assert _tensor_bytes(path) == before
    meta = read_metadata(path)
    assert meta["quality"] == {"x": 1} and precision_change(meta, "bf16") == -0.002


@pytest.mark.parametrize(("name", "scale", "path"), shipped_models(), ids=lambda v: str(v) if not hasattr(v, "name") else "")
def test_every_shipped_model_records_its_precision_changes(name, scale, path):
    meta = read_metadata(path)
    bf16, int8 = precision_change(meta, "bf16"), precision_change(meta, "int8")
    assert bf16 is not None and int8 is not None
    assert quantized_path(name, scale).is_file() == (int8 >= -INT8_MAX_LOSS)


def test_auto_on_the_shipped_flagship_follows_its_record():
    up = load("swiftrep", 4, device="cpu")
    change = precision_change(read_metadata(pretrained_path("swiftrep", 4)), "bf16")
    expected = "bf16" if change >= -AUTO_BF16_MAX_LOSS and bf16_is_fast("cpu") else "fp32"
    assert up.precision == expected, up.precision_reason


def test_int8_without_a_shipped_graph_is_one_line_that_says_why():
    missing = [(n, s) for n, s, _ in shipped_models() if not quantized_path(n, s).is_file()]
    if not missing:
        pytest.skip("every shipped model has an int8 graph")
    name, scale = missing[0]
    with pytest.raises(SuperresError, match=r"no int8 graph for .*use --backend onnx or torch") as error:
        load(name, scale, device="cpu", backend="onnx-int8")
    assert "\n" not in str(error.value)
    with pytest.raises(SuperresError, match="int8 backend runs only shipped models"):
        Upscaler(create("espcn", scale=2, channels=1), scale=2, name="mine", backend="onnx-int8")


def test_shipped_int8_graphs_run_and_stay_close():
    shipped = [(n, s) for n, s, _ in shipped_models() if quantized_path(n, s).is_file()]
    if not shipped:
        pytest.skip("no model passed the 0.05 dB gate for int8 (docs/SPEED.md)")
    name, scale = shipped[0]
    # A photo (the bundled demo's corner), as the graph was calibrated on: uniform noise lies
    # outside the activation ranges a photo gives, where int8 is not meant to hold.
    demo = Path(superres.__file__).parent / "assets" / "demo.png"
    image = np.asarray(Image.open(demo).convert("RGB"))[:48, :40]
    int8 = load(name, scale, device="cpu", backend="onnx-int8").upscale(image)
    fp32 = load(name, scale, device="cpu", precision="fp32").upscale(image)
    assert int8.shape == fp32.shape and np.abs(int8.astype(int) - fp32.astype(int)).mean() < 3
