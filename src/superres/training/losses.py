"""Losses for SR training: pixel (L1, MSE, Charbonnier), FFT, perceptual (VGG19) and adversarial."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import SuperresError
from superres.models.checkpoint import CheckpointError, read_tensors

__all__ = ["pixel_loss", "fft_loss", "fft_amplitude_loss", "PerceptualLoss", "VGG19Features", "feature_matching_loss", "generator_adversarial_loss", "discriminator_adversarial_loss"]


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str, eps: float = 1e-3) -> torch.Tensor:
    """Mean pixel loss: ``l1`` |d|, ``mse`` d^2, or ``charbonnier`` sqrt(d^2 + eps^2)."""
    diff = sr - hr
    if kind == "l1":
        return diff.abs().mean()
    if kind == "mse":
        return diff.pow(2).mean()
    if kind == "charbonnier":
        return torch.sqrt(diff * diff + eps * eps).mean()
    raise ValueError(f"unknown pixel loss {kind!r}")


def fft_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 distance between the 2-D real FFTs (real and imaginary parts), as SAFMN uses it."""
    a = torch.fft.rfft2(sr.float(), norm="backward")
    b = torch.fft.rfft2(hr.float(), norm="backward")
    return (torch.view_as_real(a) - torch.view_as_real(b)).abs().mean()


def fft_amplitude_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 distance between the amplitude spectra of Hann-windowed patches, a perceptual term
    that needs no pretrained network (Fuoli, Van Gool and Timofte, ICCV 2021, use the same
    amplitude comparison). Unlike a pixel loss, it is indifferent to where a detail sits, so
    its minimum is the target's amount of high-frequency energy, not a blur of the plausible
    details: it asks for texture where a pixel loss asks for the mean. Orthonormal FFT, so
    the amplitudes are on the pixels' scale."""
    h, w = sr.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False, device=sr.device), torch.hann_window(w, periodic=False, device=sr.device))
    a = torch.fft.rfft2(sr.float() * window, norm="ortho").abs()
    b = torch.fft.rfft2(hr.float() * window, norm="ortho").abs()
    return (a - b).abs().mean()


# VGG19's 'features' stack as torchvision numbers it: (name, in, out) per conv, "M" = max-pool.
_VGG19 = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "M",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "M",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "M",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512), "M",
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
]


class VGG19Features(nn.Module):
    """VGG19 convolutional features up to the deepest requested layer, pre-activation
    (as ESRGAN uses them), with ImageNet normalisation; weights from a user's file whose keys
    follow torchvision's ``features.N.weight`` numbering."""

    def __init__(self, layers: list[str]):
        super().__init__()
        names = [entry[0] for entry in _VGG19 if entry != "M"]
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            raise SuperresError(f"unknown VGG19 layer(s) {unknown}; choose from {names}")
        last = max(names.index(layer) for layer in layers)
        self.features = nn.Sequential()
        self.taps: dict[int, str] = {}
        self.wanted = set(layers)
        for entry in _VGG19:
            if entry == "M":
                self.features.append(nn.MaxPool2d(2))
                continue
            name, cin, cout = entry
            self.features.append(nn.Conv2d(cin, cout, 3, padding=1))
            self.taps[len(self.features) - 1] = name
            if names.index(name) == last:
                break
            self.features.append(nn.ReLU(inplace=False))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load the convolutions from a VGG19 state dict file (``.pth`` or ``.safetensors``)
        with torchvision's keys; other keys (the classifier) are ignored."""
        path = Path(path)
        if not path.is_file():
            raise SuperresError(f"VGG19 weights file not found: '{path}' (loss.perceptual.vgg_weights)")
        try:
            state = read_tensors(path)
        except CheckpointError as exc:  # names the file and says why
            raise SuperresError(f"cannot read VGG19 weights (loss.perceptual.vgg_weights): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
            raise SuperresError(f"cannot read VGG19 weights '{path}' (loss.perceptual.vgg_weights): {str(exc).splitlines()[0]}") from None
        if not isinstance(state, dict):
            raise SuperresError(f"'{path}' is not a VGG19 state dict (loss.perceptual.vgg_weights): it holds a {type(state).__name__}")
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        own = self.features.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise SuperresError(f"'{path}' is not a VGG19 state dict with torchvision keys (missing features.{missing[0]})")
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise SuperresError(f"'{path}' is not VGG19's: features.{k} has shape {tuple(state[k].shape)}, VGG19's is {tuple(v.shape)}")
        self.features.load_state_dict({k: state[k] for k in own})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (x - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.features):
            h = layer(h)
            name = self.taps.get(index)
            if name in self.wanted:
                out[name] = h
        return out


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG19 features of SR and HR (Johnson et al.; ESRGAN)."""

    def __init__(self, weights_path: str | None, layers: dict[str, float], criterion: str = "l1"):
        super().__init__()
        if not weights_path:
            raise SuperresError(
                "the perceptual loss needs VGG19 weights: set loss.perceptual.vgg_weights to a file "
                "(e.g. torchvision's vgg19 state dict); superres never downloads them"
            )
        self.vgg = VGG19Features(list(layers))
        self.vgg.load_weights(weights_path)
        self.vgg.requires_grad_(False).eval()
        self.layer_weights = dict(layers)
        self.criterion = criterion

    def train(self, mode: bool = True):  # the VGG stays in eval mode
        super().train(mode)
        self.vgg.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        fs, fh = self.vgg(sr), self.vgg(hr.detach())
        total = sr.new_zeros(())
        for name, weight in self.layer_weights.items():
            total = total + weight * pixel_loss(fs[name], fh[name], self.criterion)
        return total


def feature_matching_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """pix2pixHD's feature matching: the mean over the discriminator's stages of the L1
    distance between its activations on the SR and on the HR image. A perceptual loss whose
    features the discriminator learns on our own data, so it needs no ImageNet network."""
    return sum(F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake, real)) / len(fake)


def generator_adversarial_loss(kind: str, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's adversarial loss: ``vanilla`` (BCE), ``lsgan`` (least squares) or
    ``relativistic`` (ESRGAN's RaGAN, which needs the real logits too)."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "lsgan":
        return (fake_logits - 1).pow(2).mean()
    if kind == "relativistic":
        if real_logits is None:
            raise ValueError("the relativistic GAN loss compares fake with real logits: pass real_logits")
        real = real_logits.detach()
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real - fake_logits.mean(), torch.zeros_like(real))
            + F.binary_cross_entropy_with_logits(fake_logits - real.mean(), torch.ones_like(fake_logits))
        )
    raise ValueError(f"unknown GAN kind {kind!r}")


def discriminator_adversarial_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on real and (detached) fake logits, same kinds as above."""
    if kind == "vanilla":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())
    if kind == "relativistic":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits - fake_logits.mean(), torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits - real_logits.mean(), torch.zeros_like(fake_logits))
        )
    raise ValueError(f"unknown GAN kind {kind!r}")
