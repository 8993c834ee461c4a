"""User mistakes on the command line: one line naming the file, option or key, a non-zero
exit, no traceback; and options and files are checked before a model loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file

from superres.cli import main


def _one_line_error(capsys, args: list[str], *expected: str) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("superres: error: "), err
    for text in expected:
        assert text in err, err
    return err


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def broken_model(tmp_path) -> Path:
    """A model file that fails to load: an option error must be found before it is read."""
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    return path


def test_an_output_that_is_a_file_is_refused_before_the_model_loads(tmp_path, capsys, image, broken_model):
    existing = tmp_path / "existing.txt"
    existing.write_text("mine")
    _one_line_error(capsys, ["upscale", str(image), "-o", str(existing), "-m", str(broken_model)], f"output '{existing}' is a file")
    _one_line_error(capsys, ["upscale", str(image), "-o", str(existing / "new"), "-m", str(broken_model)], "is a file")
    assert existing.read_text() == "mine"


def test_an_output_that_cannot_be_made_is_refused_before_the_model_loads(capsys, image, broken_model):
    # /proc refuses new folders to everyone, root included (a chmod-ed folder would not stop root).
    _one_line_error(capsys, ["upscale", str(image), "-o", "/proc/superres-out/new", "-m", str(broken_model)], "cannot write output folder '/proc/superres-out/new'")


@pytest.mark.parametrize("option", [["--threads", "-1"], ["--threads", "0"], ["--tile", "-4"], ["--tile-overlap", "-1"]])
def test_options_out_of_range_are_refused_before_the_model_loads(tmp_path, capsys, image, broken_model, option):
    _one_line_error(capsys, ["upscale", str(image), "-o", str(tmp_path / "out"), "-m", str(broken_model), *option], option[0].strip("-").split("-")[0])


def _train_config(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos / "a.png")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "fsrcnn", "scale": 2},
        "data": {"train": [str(photos)], "patch_size": 32, "batch_size": 2},
        "trainer": {"max_steps": 2, "threads": 1},
    }))
    return path


@pytest.mark.parametrize("override, key", [
    ("model.scale=0", "'model.scale'"),
    ("model.hyperparameters.d=-3", "'model.hyperparameters': model 'fsrcnn' cannot be built with d=-3"),
    ("trainer.max_steps=-5", "'trainer.max_steps'"),
    ("trainer.max_steps=0", "'trainer.max_steps'"),
    ("trainer.checkpoint_every=0", "'trainer.checkpoint_every'"),
    ("val.every_n_steps=0", "'val.every_n_steps'"),
])
def test_config_values_out_of_range_name_the_key_and_nothing_is_written(tmp_path, capsys, override, key):
    config = _train_config(tmp_path)
    _one_line_error(capsys, ["train", str(config), "--set", override], key)
    assert not (tmp_path / "run").exists()


def test_a_weight_file_whose_metadata_lies_is_one_line(tmp_path, capsys, image):
    abc = tmp_path / "abc.safetensors"
    save_file({"head.weight": torch.zeros(1)}, str(abc), metadata={"superres.arch": "swiftrep", "superres.scale": "abc"})
    _one_line_error(capsys, ["upscale", str(image), "-m", str(abc), "-o", str(tmp_path / "o")], str(abc), "superres.scale is 'abc'")
    # A 100-byte file whose hyperparameters would allocate ~130 GB: refused from the header,
    # before anything is allocated (the shapes its tensors would need are not in the file).
    huge = tmp_path / "huge.safetensors"
    hyper = json.dumps({"features": 120000, "blocks": 3})
    save_file({"head.weight": torch.zeros(1)}, str(huge), metadata={"superres.arch": "swiftrep", "superres.scale": "4", "superres.hyperparameters": hyper})
    assert huge.stat().st_size < 300
    _one_line_error(capsys, ["upscale", str(image), "-m", str(huge), "-o", str(tmp_path / "o")], str(huge), "does not fit SwiftRep")
    _one_line_error(capsys, ["eval", "-m", str(huge), "--data", str(image.parent), "-s", "4"], "does not fit SwiftRep")


def test_a_port_out_of_range_is_one_line_in_a_real_process():
    done = subprocess.run([sys.executable, "-m", "superres", "serve", "--port", "99999"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip() == "superres: error: port must be 0-65535, got 99999"


def test_file_names_are_printed_escaped(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    evil = "evil\n\x1b[31mred\u202e"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{evil}.png")
    (folder / f"{evil}broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "-m", "bicubic", "-s", "2"]) == 1
    captured = capsys.readouterr()
    # One "wrote"; one "failed" and the summary of skipped and failed files (issue 15): no forged lines.
    for stream, lines in ((captured.out, 1), (captured.err, 2)):
        assert "\x1b" not in stream and "\u202e" not in stream
        assert len(stream.strip().splitlines()) == lines, stream
    assert "evil\\n\\x1b[31mred\\u202e_x2.png" in captured.out
    assert captured.err.startswith("superres: failed ") and "evil\\n\\x1b[31mred\\u202ebroken.png" in captured.err
    # eval's table too
    assert main(["eval", "--data", str(folder), "-s", "2", "--per-image"]) == 1
    table = capsys.readouterr().out
    assert "\x1b" not in table and "evil\\n\\x1b[31mred\\u202e" in table
