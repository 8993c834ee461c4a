"""Synthetic inputs for the training tests: VGG19 weights in torchvision's layout, small photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

# torchvision's vgg19().features numbering: (index, in, out) of each 3x3 convolution; ReLUs
# and max-pools take the indices in between. Written out here rather than taken from
# superres's VGG19Features, so that the tests check that layout instead of assuming it.
TORCHVISION_VGG19_CONVS = [
    (0, 3, 64), (2, 64, 64),
    (5, 64, 128), (7, 128, 128),
    (10, 128, 256), (12, 256, 256), (14, 256, 256), (16, 256, 256),
    (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
]


def random_vgg19_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A VGG19 state dict in torchvision's key layout with He-scaled random convolutions
    (so that features neither vanish nor explode through 16 layers), plus a classifier key
    that loaders must ignore."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, cin, cout in TORCHVISION_VGG19_CONVS:
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def write_photos(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` smooth, textured RGB images of ``size`` px (PNG), photo-like enough for SR."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(count):
        fx, fy = rng.uniform(0.05, 0.4, 2)
        base = 128 + 60 * np.sin(x * fx + i) * np.cos(y * fy)
        image = np.stack([base, base[::-1], base.T], axis=-1) + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"photo{i}.png")
    return folder


def tensorboard_scalars(run: Path) -> dict[str, list[float]]:
    """Every scalar a training run logged to TensorBoard (``RUN/tb``), by tag, in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
