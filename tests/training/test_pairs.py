"""LR synthesis in the DataLoader's workers gives the pairs the training process would make:
the same batch for the same iteration, and the same weights after a short run."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from superres.data.datasets import HRPatchDataset, ImageStore, PatchStreamSampler
from superres.data.pairs import IndexedPatches, LRHRPair, SynthesizeLR
from superres.training import load_config, train
from superres.training.module import SRModule

SECOND_ORDER = {"second_order": {}}


def _raw(tmp_path, photos, workers: int, name: str) -> dict:
    return {
        "output_dir": str(tmp_path / name),
        "model": {"name": "fsrcnn", "scale": 2, "hyperparameters": {"d": 8, "s": 4, "m": 1}},
        "data": {"train": [str(photos)], "patch_size": 32, "batch_size": 2, "num_workers": workers, "degradations": SECOND_ORDER},
        "optim": {"lr": 1.0e-3, "ema_decay": None},
        "trainer": {"max_steps": 4, "checkpoint_every": 4, "threads": 1, "log_every": 1, "seed": 3},
    }


def test_the_collate_makes_the_batch_make_pair_would(tmp_path, photos):
    config = load_config(_raw(tmp_path, photos, 1, "a"))
    module = SRModule(config)
    dataset = HRPatchDataset(ImageStore([str(photos)], min_size=32), patch=32, seed=3)
    collate = SynthesizeLR(2, config.data.degradations, 3, batch_size=2)
    indices = iter(PatchStreamSampler(batch_size=2, start_batch=lambda: 5))
    samples = [IndexedPatches(dataset)[next(indices)] for _ in range(2)]  # batch 5 of the stream
    pair = collate(samples)
    assert isinstance(pair, LRHRPair) and pair.lr.shape == (2, 3, 16, 16)
    module.iteration = 5
    lr, hr = module.make_pair(torch.stack([torch.as_tensor(p) for _, p in samples]))
    torch.testing.assert_close(pair.lr, lr, rtol=0, atol=0)
    torch.testing.assert_close(pair.hr, hr, rtol=0, atol=0)
    module.iteration = 6  # another iteration draws other degradations
    assert not torch.equal(module.make_pair(torch.stack([torch.as_tensor(p) for _, p in samples]))[0], pair.lr)


def test_a_run_with_a_worker_trains_the_same_weights(tmp_path, photos):
    runs = {}
    for workers in (0, 1):
        config = load_config(_raw(tmp_path, photos, workers, f"w{workers}"))
        runs[workers] = load_file(str(train(config)))
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        torch.testing.assert_close(runs[0][key], runs[1][key], rtol=0, atol=0)
