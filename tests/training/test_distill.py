"""Distillation: cached teacher labels (superres.data.teacher_labels) and a student trained on
them with the teacher's pixel loss and a discriminator that takes the teacher's outputs as real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from synthetic import tensorboard_scalars

from superres.cli import main
from superres.data.datasets import DataError, ImageStore
from superres.data.teacher_labels import KINDS, LabelSet, TeacherLabelDataset, make_labels
from superres.training import ConfigError, load_config


def nearest_x2(image: np.ndarray) -> np.ndarray:
    """A stand-in teacher whose output is known exactly: nearest-neighbour x2."""
    return image.repeat(2, axis=1).repeat(2, axis=2)


@pytest.fixture
def labels(tmp_path, photos) -> LabelSet:
    return LabelSet(tmp_path / "labels", (str(photos),), scale=2, lr_size=16, seed=3)


def test_labels_are_made_once_fixed_by_seed_and_index_and_resume(labels, tmp_path):
    calls = []

    def teacher(image):
        calls.append(image.shape)
        return nearest_x2(image)

    assert make_labels(teacher, labels, 4) == 4 and calls == [(3, 16, 16)] * 4
    first = {p.name: p.read_bytes() for p in labels.folder.glob("*.npz")}
    # A resumed (or grown) set computes only what it lacks.
    (labels.folder / "000002.npz").unlink()
    assert make_labels(teacher, labels, 6) == 3 and len(calls) == 7
    again = {p.name: p.read_bytes() for p in labels.folder.glob("*.npz")}
    assert again["000002.npz"] == first["000002.npz"]  # the same sample, remade
    with np.load(labels.folder / "000001.npz") as sample:
        assert sample["lr"].shape == (16, 16, 3) and sample["teacher"].shape == (32, 32, 3)
        assert json.loads(str(sample["where"]))["kind"] == list(KINDS)[1]
        np.testing.assert_array_equal(sample["teacher"], sample["lr"].repeat(2, 0).repeat(2, 1))


def test_other_settings_in_the_same_folder_are_refused(labels):
    make_labels(nearest_x2, labels, 1)
    other = LabelSet(labels.folder, labels.photos, scale=2, lr_size=16, seed=4)
    with pytest.raises(DataError, match=r"other settings \(seed\)"):
        make_labels(nearest_x2, other, 2)


def test_the_dataset_cuts_aligned_lr_teacher_and_hr_crops(labels, photos):
    make_labels(nearest_x2, labels, 4)
    store = ImageStore([photos])
    data = TeacherLabelDataset([labels.folder], store, patch=8, seed=1)
    assert data.scale == 2
    for index in range(6):
        lr, taught, hr = data[index]
        assert lr.shape == (3, 8, 8) and taught.shape == hr.shape == (3, 16, 16) and lr.dtype == torch.uint8
        torch.testing.assert_close(taught, lr.repeat_interleave(2, 1).repeat_interleave(2, 2))
        # The HR is where the LR came from: its 2x2 means are close to the LR (the light
        # kind adds noise and JPEG; the real kind blurs), far closer than another crop's.
        means = torch.nn.functional.avg_pool2d(hr[None].float(), 2)[0]
        assert (means - lr.float()).abs().mean() < 25
    torch.testing.assert_close(data[3][0], data[3][0])  # seeded by (seed, index)


def test_a_label_set_grows_under_a_running_dataset(labels, photos):
    make_labels(nearest_x2, labels, 2)
    data = TeacherLabelDataset([labels.folder], ImageStore([photos]), rescan=5)
    assert len(data.files) == 2
    make_labels(nearest_x2, labels, 5)
    data[4]
    assert len(data.files) == 2  # not yet: every 5 samples
    data[5]
    assert len(data.files) == 5


def _distill_config(tmp_path: Path, photos: Path, labels: Path, **loss) -> dict:
    return {
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "srvggnet-compact", "scale": 2, "hyperparameters": {"features": 8, "convs": 2}},
        "data": {"train": [str(photos)], "patch_size": 24, "batch_size": 2, "teacher_labels": [str(labels)]},
        "loss": {"pixel_weight": 0.1, "teacher_weight": 1.0, **loss},
        "optim": {"lr": 1.0e-3, "ema_decay": None},
        "trainer": {"max_steps": 4, "checkpoint_every": 4, "threads": 1, "log_every": 1},
    }


def test_a_student_trains_on_teacher_labels_with_a_gan_that_takes_the_teacher_as_real(labels, photos, tmp_path):
    make_labels(nearest_x2, labels, 4)
    gan = {"gan": {"weight": 0.1, "kind": "vanilla", "discriminator": "unet-discriminator",
                   "discriminator_hyperparameters": {"features": 8}, "real": "teacher", "feature_matching": 1.0}}
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump(_distill_config(tmp_path, photos, labels.folder, **gan)))
    assert main(["train", str(config)]) == 0
    scalars = tensorboard_scalars(tmp_path / "run")
    for tag in ("train/teacher", "train/pixel", "train/gan", "train/feature_matching", "train/d_loss"):
        assert len(scalars[tag]) == 4 and all(np.isfinite(scalars[tag])), tag
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_distillation_settings_are_checked_up_front(labels, photos, tmp_path):
    raw = _distill_config(tmp_path, photos, labels.folder)
    del raw["data"]["teacher_labels"]
    with pytest.raises(ConfigError, match="need data.teacher_labels"):
        load_config(raw)
    raw = _distill_config(tmp_path, photos, labels.folder)
    raw["data"]["degradations"] = {"noise_sigma": [0, 5]}
    with pytest.raises(ConfigError, match="brings its own LR inputs"):
        load_config(raw)
