"""Training end to end: FSRCNN beats bicubic, resume after SIGKILL, two-process DDP (and with a GAN), config errors."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from superres.cli import main
from superres.training import ConfigError, load_config
from superres.training.schedule import lr_factor

SUPERRES = [sys.executable, "-m", "superres"]


def _config(tmp_path: Path, train_dir: Path, **sections) -> Path:
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "fsrcnn", "scale": 2},
        "data": {"train": [str(train_dir)], "patch_size": 64, "batch_size": 8},
        "optim": {"lr": 1.0e-3, "warmup_steps": 20, "ema_decay": None},
        "trainer": {"max_steps": 60, "checkpoint_every": 20, "threads": 1, "log_every": 10},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def few_images(train_hr, tmp_path_factory):
    """A handful of the shared training photos (links, not copies)."""
    folder = tmp_path_factory.mktemp("few")
    for path in sorted(train_hr.glob("sunhays80-*.png"))[:8]:
        (folder / path.name).symlink_to(path)
    return folder


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_fsrcnn_beats_bicubic_on_set5(tmp_path, few_images, set5, capsys):
    config = _config(
        tmp_path, few_images,
        data={"patch_size": 96, "batch_size": 16},
        trainer={"max_steps": 400, "checkpoint_every": 400},
        val={"folders": [str(set5)], "every_n_steps": 400},
    )
    assert main(["train", str(config)]) == 0
    weights = tmp_path / "run" / "model.safetensors"
    capsys.readouterr()
    scores = {}
    for model in ("bicubic", str(weights)):
        assert main(["eval", "--model", model, "--data", str(set5), "--scale", "2", "--format", "json"]) == 0
        scores[model] = json.loads(capsys.readouterr().out)[0]["psnr"]
    assert scores[str(weights)] >= scores["bicubic"] + 0.3, scores
    # The validation inside training used the same protocol and agrees with eval.
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["iteration"] == 400
    assert last["Set5/psnr"] == pytest.approx(scores[str(weights)], abs=1e-3)
    meta = __import__("superres").models.read_metadata(weights)
    assert meta["training"]["iterations"] == 400 and meta["training"]["data"]["images"] == 8


@pytest.mark.slow
def test_weights_of_a_fine_tuned_run_name_every_stage(tmp_path, few_images):
    (tmp_path / "a").mkdir()
    first = _config(
        tmp_path / "a", few_images, model={"name": "fsrcnn-s", "scale": 2},
        trainer={"max_steps": 6, "checkpoint_every": 6},
    )
    assert main(["train", str(first)]) == 0
    x2_ckpt = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    (tmp_path / "b").mkdir()
    second = _config(
        tmp_path / "b", few_images,
        model={"name": "fsrcnn-s", "scale": 4, "init_from": str(x2_ckpt)},
        data={"patch_size": 64},
        trainer={"max_steps": 4, "checkpoint_every": 4, "precision": "bf16-mixed"},
    )
    assert main(["train", str(second)]) == 0
    training = __import__("superres").models.read_metadata(tmp_path / "b" / "run" / "model.safetensors")["training"]
    assert training["iterations"] == 4 and training["config"]["trainer"]["precision"] == "bf16-mixed"
    parent = training["started_from"]
    assert parent["from"] == str(x2_ckpt)
    assert parent["iterations"] == 6 and parent["config"]["model"]["scale"] == 2 and parent["started_from"] is None
    assert parent["data"]["images"] == 8 and parent["commit"] == training["commit"]
    assert training["total_iterations"] == 10


@pytest.mark.slow
def test_resume_after_sigkill_continues_from_checkpoint(tmp_path, few_images):
    config = _config(tmp_path, few_images, trainer={"max_steps": 120, "checkpoint_every": 20})
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([*SUPERRES, "train", str(config)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    killed_at = torch.load(last, weights_only=True)["superres"]["iteration"]
    assert 0 < killed_at < 120
    done = subprocess.run([*SUPERRES, "train", str(config), "--resume"], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed_at = int(done.stdout.split("resuming at iteration ")[1].split()[0])
    assert resumed_at >= killed_at  # a later checkpoint may have landed before the kill took effect
    assert torch.load(last, weights_only=True)["superres"]["iteration"] == 120
    assert not list(last.parent.glob("*.tmp")), "a temporary checkpoint file was left behind"
    # Resuming a finished run is refused clearly rather than silently starting over.
    again = subprocess.run([*SUPERRES, "train", str(config)], env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "--resume" in again.stderr


@pytest.mark.slow
def test_sigterm_to_the_whole_run_with_loader_workers_saves_a_checkpoint(tmp_path, few_images):
    # What a scheduler does (SLURM's scancel, `kill -- -PGID`, `pkill -f`): SIGTERM to the
    # training process and its DataLoader worker at once. The run must save and say where.
    config = _config(tmp_path, few_images, data={"num_workers": 1}, trainer={"max_steps": 100000, "checkpoint_every": 100000})
    log = tmp_path / "train.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([*SUPERRES, "train", str(config)], env=_env(), stdout=sink, stderr=sink, start_new_session=True)
    deadline = time.time() + 300
    def steps() -> int:  # the progress bar's count: " 3/100000 ", or more between updates
        return max((int(n) for n in re.findall(r" (\d+)/100000 ", log.read_text(errors="replace"))), default=0)

    while time.time() < deadline and proc.poll() is None and steps() < 3:
        time.sleep(0.2)  # a few steps done: the worker is making batches
    assert proc.poll() is None, log.read_text()[-2000:]
    workers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) >= 2  # the trainer and its loader worker
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    output = log.read_text(errors="replace")
    assert "DataLoader worker" not in output, output[-2000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.exists(), output[-2000:]
    assert torch.load(last, weights_only=True)["superres"]["iteration"] > 0


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_identical(tmp_path, few_images):
    config = _config(
        tmp_path, few_images,
        trainer={"max_steps": 15, "checkpoint_every": 15, "devices": 2, "accelerator": "cpu", "strategy": "ddp"},
    )
    done = subprocess.run([*SUPERRES, "train", str(config)], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    check = json.loads((tmp_path / "run" / "ddp_check.json").read_text())
    assert len(check["checksums"]) == 2
    assert check["identical"] is True
    assert (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_two_process_ddp_trains_a_gan(tmp_path, few_images):
    # Each net's backward leaves the other without gradients, which DDP rejects unless told.
    config = _config(
        tmp_path, few_images,
        data={"patch_size": 32, "batch_size": 2},
        loss={"gan": {"weight": 1.0e-2, "discriminator": "vgg-discriminator", "discriminator_hyperparameters": {"input_size": 32, "features": 8}}},
        trainer={"max_steps": 3, "checkpoint_every": 3, "devices": 2, "accelerator": "cpu", "strategy": "ddp"},
    )
    done = subprocess.run([*SUPERRES, "train", str(config)], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "ddp_check.json").read_text())["identical"] is True  # generator and discriminator
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["superres"]["iteration"] == 3 and len(last["optimizer_states"]) == 2


def test_config_errors_name_the_key(tmp_path):
    base = {"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}}
    with pytest.raises(ConfigError, match="unknown key 'data.patch_sise'"):
        load_config({**base, "data": {"train": ["x"], "patch_sise": 96}})
    with pytest.raises(ConfigError, match="'data.batch_size'"):
        load_config(base, ["data.batch_size=sixteen"])
    with pytest.raises(ConfigError, match="missing key 'model'"):
        load_config({"data": {"train": ["x"]}})
    cfg = load_config(base, ["optim.lr=1e-3", "optim.betas=[0.9, 0.999]", "trainer.max_steps=7"])
    assert cfg.optim.lr == 1e-3 and cfg.optim.betas == (0.9, 0.999) and cfg.trainer.max_steps == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_reports_config_error_in_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "fsrcnn", "scale": 2}, "data": {"train": ["x"]}, "optim": {"lr": "fast"}}))
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "optim.lr" in err


def test_set_takes_several_overrides_and_repeats():
    from superres.cli import build_parser

    args = build_parser().parse_args(["train", "c.yaml", "--set", "trainer.devices=4", "trainer.strategy=ddp", "--set", "data.batch_size=8", "--resume"])
    assert args.overrides == ["trainer.devices=4", "trainer.strategy=ddp", "data.batch_size=8"] and args.resume


def test_lr_schedules():
    kw = dict(max_steps=100, base_lr=1e-3)
    assert lr_factor(0, schedule="cosine", warmup_steps=10, **kw) == pytest.approx(0.1)
    assert lr_factor(10, schedule="cosine", warmup_steps=10, **kw) == pytest.approx(1.0)
    assert lr_factor(100, schedule="cosine", min_lr=1e-5, **kw) == pytest.approx(0.01)
    assert lr_factor(55, schedule="cosine", warmup_steps=10, min_lr=0.0, **kw) == pytest.approx(0.5)
    assert lr_factor(60, schedule="multistep", milestones=[50, 80], gamma=0.5, **kw) == 0.5
    assert lr_factor(90, schedule="multistep", milestones=[50, 80], gamma=0.5, **kw) == 0.25


def test_scale_up_from_x2_copies_all_but_the_upsampler(tmp_path):
    from superres.models import create, save
    from superres.training.module import init_from_checkpoint

    x2 = create("fsrcnn", scale=2)
    path = save(x2, tmp_path / "x2.safetensors", arch="fsrcnn", scale=2, hyperparameters={})
    x4 = create("fsrcnn", scale=4)
    left = init_from_checkpoint(x4, path)
    assert left == ["deconv.bias", "deconv.weight"]
    assert torch.equal(x4.body[0].weight, x2.body[0].weight)
    assert not torch.equal(x4.deconv.weight, x2.deconv.weight)
    e2, e4 = create("espcn", scale=2), create("espcn", scale=4)
    path = save(e2, tmp_path / "e2.safetensors", arch="espcn", scale=2, hyperparameters={})
    assert init_from_checkpoint(e4, path) == ["body.4.bias", "body.4.weight"]


def test_same_scale_start_copies_the_upsampler_too(tmp_path):
    """A later stage at the same scale continues the whole model, FSRCNN's scale-specific
    deconvolution included, from a safetensors file or a training checkpoint."""
    from superres.models import create, save
    from superres.training.module import init_from_checkpoint

    x3 = create("fsrcnn", scale=3)
    with torch.no_grad():
        x3.deconv.weight.add_(0.5)  # trained weights differ from a fresh model's
    path = save(x3, tmp_path / "x3.safetensors", arch="fsrcnn", scale=3, hyperparameters={})
    again = create("fsrcnn", scale=3)
    assert init_from_checkpoint(again, path) == []
    assert torch.equal(again.deconv.weight, x3.deconv.weight)

    ckpt = tmp_path / "last.ckpt"
    state = {f"ema_generator.{k}": v for k, v in x3.state_dict().items()}
    torch.save({"state_dict": state, "superres": {"config": {"model": {"scale": 3}}}}, ckpt)
    again = create("fsrcnn", scale=3)
    assert init_from_checkpoint(again, ckpt) == []
    assert torch.equal(again.deconv.weight, x3.deconv.weight)
    x4 = create("fsrcnn", scale=4)
    assert init_from_checkpoint(x4, ckpt) == ["deconv.bias", "deconv.weight"]
