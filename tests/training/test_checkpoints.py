"""The one reader of training checkpoints: generator weights (EMA first), the record, errors."""

from __future__ import annotations

import pytest
import torch

from superres.models import CheckpointError, create
from superres.training.checkpoints import read_training_checkpoint


def _checkpoint(tmp_path, *, ema: bool = True):
    generator = create("espcn", scale=2)
    ema_generator = create("espcn", scale=2, init="paper")
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    if ema:
        state |= {f"ema_generator.{k}": v for k, v in ema_generator.state_dict().items()}
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "superres": {"iteration": 7, "config": {"model": {"name": "espcn", "scale": 2}}}}, path)
    return path, generator, ema_generator


def test_reads_the_ema_generator_first_and_the_record(tmp_path):
    path, generator, ema_generator = _checkpoint(tmp_path)
    ckpt = read_training_checkpoint(path)
    assert ckpt.scale == 2 and ckpt.record["iteration"] == 7
    for key, value in ckpt.generator_state().items():
        torch.testing.assert_close(value, ema_generator.state_dict()[key], rtol=0, atol=0)
    for key, value in ckpt.generator_state(prefer_ema=False).items():
        torch.testing.assert_close(value, generator.state_dict()[key], rtol=0, atol=0)


def test_without_ema_the_generator_is_read(tmp_path):
    path, generator, _ = _checkpoint(tmp_path, ema=False)
    assert set(read_training_checkpoint(path).generator_state()) == set(generator.state_dict())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"^checkpoint not found: '.*last.ckpt'$"),
        (b"not a checkpoint at all", r"^cannot read '.*last.ckpt': [^\n]+$"),
    ],
)
def test_a_bad_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "last.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_training_checkpoint(path)


def test_a_checkpoint_without_a_generator_says_so(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"discriminator.w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="holds no generator weights"):
        read_training_checkpoint(path).generator_state()


def test_a_damaged_safetensors_start_is_a_checkpoint_error(tmp_path):
    """model.init_from of a damaged .safetensors file: a one-line CheckpointError naming it,
    as every other reader of weights gives (it was safetensors' own error, a traceback)."""
    from superres.models import create
    from superres.models.checkpoint import CheckpointError
    from superres.training.module import init_from_checkpoint

    damaged = tmp_path / "start.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(CheckpointError, match="start.safetensors.*not a valid safetensors file"):
        init_from_checkpoint(create("espcn", scale=2), damaged)
