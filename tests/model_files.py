"""Weight files the tests write themselves, shared by the model, CLI and web-app tests."""

from __future__ import annotations

from pathlib import Path


def write_blend_pair(folder: Path, blocks: int = 2) -> tuple[Path, Path]:
    """swiftrep-real and swiftrep-real-gan x4 weight files (the second the first, nudged), small
    and random, where a ``weights_dirs`` folder is looked at: a perceptual model and its
    fidelity partner for the strength control."""
    import torch

    from superres.models import create, save

    torch.manual_seed(0)
    fidelity = create("swiftrep-real", scale=4, blocks=blocks)
    perceptual = create("swiftrep-real-gan", scale=4, blocks=blocks)
    perceptual.load_state_dict(fidelity.state_dict())
    with torch.no_grad():
        for p in perceptual.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tuple(
        save(net, folder / f"{name}_x4.safetensors", arch=name, scale=4, hyperparameters={"blocks": blocks})
        for name, net in (("swiftrep-real", fidelity), ("swiftrep-real-gan", perceptual))
    )
