"""Fine-tuning a shipped model: a run started from each shipped weight file (SwiftRep's are in
the fused form, the others as trained) scores, before its first step, what the file says it
scores; and a start that does not fit is refused with the tensors named, in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from superres.models import read_metadata
from superres.training import load_config, train
from superres.zoo_report import shipped_models

SHIPPED = shipped_models()


def _raw(tmp_path, photos, name: str, scale: int, hyperparameters: dict, init_from: str, val: list[str]) -> dict:
    return {
        "output_dir": str(tmp_path / "run"),
        "model": {"name": name, "scale": scale, "hyperparameters": hyperparameters, "init_from": init_from},
        "data": {"train": [str(photos)], "patch_size": 24, "batch_size": 2},
        "val": {"folders": val, "every_n_steps": 1000},
        "optim": {"lr": 1.0e-5, "ema_decay": None},
        "trainer": {"max_steps": 1, "checkpoint_every": 1, "threads": 1},
    }


@pytest.mark.slow
@pytest.mark.parametrize("name, scale, path", SHIPPED, ids=[f"{n}_x{s}" for n, s, _ in SHIPPED])
def test_a_run_from_a_shipped_file_starts_at_its_shipped_score(tmp_path, photos, set5, name, scale, path):
    meta = read_metadata(path)
    # The training form: what a user's config names (SwiftRep's shipped file is fused).
    hyper = {k: v for k, v in meta["hyperparameters"].items() if k != "reparameterized"}
    train(load_config(_raw(tmp_path, photos, name, scale, hyper, str(path), [str(set5)])))
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["iteration"] == 0
    assert first["Set5/psnr"] == pytest.approx(meta["quality"]["Set5"]["psnr"], abs=0.01)


def test_a_start_that_does_not_fit_is_one_line_and_can_be_asked_for(tmp_path, photos):
    (name, scale, path) = next(entry for entry in SHIPPED if entry[0] == "swiftrep")
    raw = _raw(tmp_path, photos, name, scale, {}, str(path), [])  # blocks left at the default 10; the file has 24
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "superres", "train", str(config)], capture_output=True, text=True, timeout=300)
    err = done.stderr.strip()
    assert done.returncode == 1 and "\n" not in err, err
    assert "42 of its 76 tensors fit nowhere in the model (acts.10.weight" in err and "model.init_partial" in err
    assert not (tmp_path / "run" / "config.yaml").exists()

    raw["model"]["init_partial"] = True
    train(load_config(raw))  # asked for: the first ten blocks, the head and the tail
    assert (tmp_path / "run" / "model.safetensors").is_file()
