"""The strength control: a perceptual model's weights blended toward its fidelity partner's
(ESRGAN's network interpolation) through the library, the Upscaler and the CLI, on weight files
written here; the ends are the two models exactly, and what cannot be blended is a one-line error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import superres
from model_files import write_blend_pair
from superres.errors import SuperresError
from superres.models import get_spec
from superres.models.pretrained import fidelity_partner, load_blended


@pytest.fixture
def pair(tmp_path):
    return write_blend_pair(tmp_path)


@pytest.fixture
def photo():
    return np.random.default_rng(3).integers(0, 256, (20, 28, 3), dtype=np.uint8)


def test_the_gan_model_names_its_fidelity_partner():
    spec = get_spec("swiftrep-real-gan")
    assert spec.fidelity == "swiftrep-real" and spec.trained_for == "real"
    assert spec.builder is get_spec("swiftrep-real").builder  # one network: the weights can blend
    assert get_spec("swiftrep").fidelity is None


def test_strength_ends_are_the_two_models_and_the_middle_is_between(pair, photo):
    fid_path, gan_path = pair
    ups = {s: superres.load(gan_path, 4, strength=s, fidelity=fid_path, tile=0).upscale(photo).astype(int) for s in (0, 0.5, 1)}
    fidelity = superres.load(fid_path, 4, tile=0).upscale(photo).astype(int)
    perceptual = superres.load(gan_path, 4, tile=0).upscale(photo).astype(int)
    np.testing.assert_array_equal(ups[0], fidelity)
    np.testing.assert_array_equal(ups[1], perceptual)
    # Halfway in weights lands between the two results, away from both.
    assert 0 < np.abs(ups[0.5] - fidelity).mean() < np.abs(perceptual - fidelity).mean()
    assert 0 < np.abs(ups[0.5] - perceptual).mean() < np.abs(perceptual - fidelity).mean()


def test_load_blended_blends_every_tensor(pair):
    fid_path, gan_path = pair
    blended = load_blended(gan_path, 4, 0.25, fidelity=fid_path).state_dict()
    fid = superres.models.load(fid_path).state_dict()
    gan = superres.models.load(gan_path).state_dict()
    for key, value in blended.items():
        torch.testing.assert_close(value, 0.75 * fid[key] + 0.25 * gan[key])


def test_a_gan_weight_file_finds_its_partner_by_its_metadata(pair):
    assert fidelity_partner(pair[1]) == "swiftrep-real"
    assert fidelity_partner(pair[1], fidelity=pair[0]) == str(pair[0])


@pytest.mark.parametrize(
    "model, options, message",
    [
        ("swiftrep", {"strength": 0.5}, "no fidelity partner"),
        ("GAN", {"strength": 1.5}, r"strength must be a number in \[0, 1\]"),
        ("GAN", {"strength": True}, r"strength must be a number in \[0, 1\]"),
        ("swiftrep", {"fidelity": "swiftrep"}, "only with a strength"),
    ],
)
def test_what_cannot_be_blended_is_refused_before_loading(pair, model, options, message):
    model = str(pair[1]) if model == "GAN" else model
    with pytest.raises(SuperresError, match=message):
        superres.load(model, 4, **options)


def test_a_partner_of_another_size_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    fid_path, _ = write_blend_pair(other, blocks=3)
    _, gan_path = write_blend_pair(tmp_path, blocks=2)
    with pytest.raises(SuperresError, match="cannot blend these two models: they differ in hyperparameters"):
        superres.load(gan_path, 4, strength=0.5, fidelity=fid_path)


def test_cli_strength(pair, tmp_path):
    fid_path, gan_path = pair
    source = tmp_path / "in.png"
    pixels = np.random.default_rng(5).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "superres", "upscale", str(source), "-o", str(out), "-m", str(gan_path),
         "--strength", "0.5", "--fidelity", str(fid_path), "--tile", "0"],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    expected = superres.load(gan_path, 4, strength=0.5, fidelity=fid_path, tile=0).upscale(pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "in_x4.png")), expected)

    refused = subprocess.run(
        [sys.executable, "-m", "superres", "upscale", str(source), "-o", str(out), "-m", "swiftrep", "--strength", "0.5"],
        capture_output=True, text=True,
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].startswith("superres: ")
    assert "no fidelity partner" in refused.stderr and "Traceback" not in refused.stderr
