"""No file superres reads can run code: a pickle whose payload writes a marker file is refused
by every command that reads a PyTorch file, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (which
emulates the torch releases whose default unpickles anything), and resuming or exporting from
a broken ``last.ckpt`` is one line, with the run folder left as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

SUPERRES = [sys.executable, "-m", "superres"]


class _Payload:
    """Unpickling this object writes ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def _env() -> dict:
    return {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a superres training checkpoint, with the payload inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"generator.x": torch.zeros(1)}, "superres": {"iteration": 1, "rng": _Payload(marker)}}, path)
    return path


def _config(tmp_path: Path, photos: Path, **model) -> Path:
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "fsrcnn-s", "scale": 2, **model},
        "data": {"train": [str(photos)], "patch_size": 32, "batch_size": 2},
        "trainer": {"max_steps": 2, "checkpoint_every": 2, "threads": 1},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _one_line_failure(args: list[str], marker: Path, named: Path) -> str:
    done = subprocess.run([*SUPERRES, *args], env=_env(), capture_output=True, text=True, timeout=300)
    err = done.stderr.strip()
    assert not marker.exists(), f"the payload ran under {args}"
    assert done.returncode == 1, (args, done.stdout, err)
    assert "\n" not in err and "Traceback" not in err, err
    assert str(named) in err and "weights_only=False" not in err, err
    return err


def test_the_hostile_file_does_run_code_when_unpickled_freely(tmp_path):
    # The control: without superres's explicit weights_only, this environment would run it.
    marker = tmp_path / "ran"
    path = _hostile_checkpoint(tmp_path / "evil.ckpt", marker)
    code = f"import torch; torch.load({str(path)!r})"
    subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, timeout=120)
    assert marker.exists()


def test_no_command_runs_a_hostile_pickle(tmp_path, photos):
    marker = tmp_path / "ran"
    config = _config(tmp_path, photos)
    last = _hostile_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", marker)
    err = _one_line_failure(["train", str(config), "--resume"], marker, last)
    assert "pickled exec object" in err and "safetensors" in err  # what the file is, and what superres reads
    assert not (tmp_path / "run" / "config.yaml").exists(), "a run that cannot start wrote its config"
    _one_line_failure(["export", str(tmp_path / "run")], marker, last)

    other = tmp_path / "b"
    other.mkdir()
    _one_line_failure(["train", str(_config(other, photos, init_from=str(last)))], marker, last)
    pth = _hostile_checkpoint(tmp_path / "model.pth", marker)
    _one_line_failure(["eval", "-m", str(pth), "--data", str(photos), "-s", "2"], marker, pth)
    _one_line_failure(["upscale", str(photos / "photo0.png"), "-m", str(pth), "-s", "2", "-o", str(tmp_path / "out")], marker, pth)


def test_lightning_reads_checkpoints_only_through_the_safe_loader(tmp_path, monkeypatch):
    from superres.errors import SuperresError
    from superres.training.callbacks import AtomicCheckpointIO

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "ran"
    path = _hostile_checkpoint(tmp_path / "last.ckpt", marker)
    io = AtomicCheckpointIO()
    with pytest.raises(SuperresError, match="pickled exec object"):
        io.load_checkpoint(path, weights_only=False)  # what Lightning may pass; not obeyed
    assert not marker.exists()
    # A checkpoint already read (safely) by train() is handed over, not read a second time.
    read = {"state_dict": {}, "superres": {"iteration": 3}}
    io = AtomicCheckpointIO({path: read})
    assert io.load_checkpoint(str(path)) is read


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated"], ids=["empty", "truncated"])
def test_resume_or_export_from_a_broken_checkpoint_is_one_line(tmp_path, photos, content):
    config = _config(tmp_path, photos)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(content)
    (tmp_path / "run" / "config.yaml").write_text("the run's own config\n")
    for args in (["train", str(config), "--resume"], ["export", str(tmp_path / "run")]):
        done = subprocess.run([*SUPERRES, *args], env=_env(), capture_output=True, text=True, timeout=300)
        err = done.stderr.strip()
        assert done.returncode == 1 and "\n" not in err and str(last) in err, err
    assert (tmp_path / "run" / "config.yaml").read_text() == "the run's own config\n"


def test_a_pickle_of_plain_data_still_loads(tmp_path):
    # The safe loader is not a refusal of every pickle: a state dict of tensors is what it reads.
    from superres.models.checkpoint import torch_load

    path = tmp_path / "plain.pth"
    torch.save({"w": torch.ones(2), "meta": {"epoch": 3, "name": "x"}}, path)
    loaded = torch_load(path)
    assert torch.equal(loaded["w"], torch.ones(2)) and loaded["meta"] == {"epoch": 3, "name": "x"}
