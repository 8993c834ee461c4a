"""Fixtures for the training tests: a random VGG19 weights file and small synthetic photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synthetic import random_vgg19_state, write_photos


@pytest.fixture(scope="session")
def vgg19_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(random_vgg19_state(), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three 64 px training images."""
    return write_photos(tmp_path_factory.mktemp("photos"), 3, 64)
