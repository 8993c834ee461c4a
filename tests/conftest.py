"""Shared fixtures. Tests that need ../shared (training photos, Set5/Set14) skip with a clear
message when it is absent; in CI it is always there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SUPERRES_SHARED", REPO.parent / "shared"))
DATASETS = SHARED / "datasets"

# The test machine has 2 cores; one intra-op thread per test process keeps parallel
# training jobs and tests from thrashing each other, and results deterministic.
torch.set_num_threads(int(os.environ.get("SUPERRES_TEST_THREADS", "1")))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared datasets beside the repo; set SUPERRES_SHARED to point elsewhere)")
    return path


@pytest.fixture(scope="session")
def set5() -> Path:
    return _need(DATASETS / "benchmark" / "Set5")


@pytest.fixture(scope="session")
def set14() -> Path:
    return _need(DATASETS / "benchmark" / "Set14")


@pytest.fixture(scope="session")
def train_hr() -> Path:
    return _need(DATASETS / "train" / "hr")
