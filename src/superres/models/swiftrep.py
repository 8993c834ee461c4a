"""SwiftRep: superres's efficient flagship, a re-parameterisable plain convolutional network.

Design, and why (the goal is the best quality per CPU-second):

- On a CPU the cheapest operation per multiply-add is a dense 3x3 convolution with a
  channel count that is a multiple of 16 (oneDNN and ONNX Runtime kernels reach a large
  share of peak on it); attention, large depthwise kernels, LayerNorm and channel splits
  (SAFMN, SPAN, IMDN) cost several times their multiply-adds in memory traffic.
- So the inference network is plain: a 3x3 head, ``blocks`` x (3x3 conv + PReLU), a long
  skip, a 3x3 tail to C*s^2 channels and a pixel shuffle, all at LR resolution.
- It trains with a richer structure that folds away (RepVGG, Ding et al. CVPR 2021; ECBSR,
  Zhang et al. ACM MM 2021): each body convolution is 3x3 + 1x1 + identity in training,
  which trains faster and better than a plain stack, and ``reparameterize()`` sums the
  three into one 3x3 kernel, exactly (to float rounding).
- The input is added back after the tail as an "anchor" (Du et al., ABPN, CVPRW 2021): each
  LR pixel repeated s*s times, so the network learns a residual over nearest-neighbour
  upscaling at the cost of one add.

Budget, at the default 32 features and 10 blocks, in the fused form that ships
(``superres models``): 97K parameters at x2 (108K at x4), 24.1K multiply-adds per output
pixel at x2 and 6.7K at x4, against VDSR's 667K per output pixel (a 28th at x2, a 99th at
x4); the training form adds the 1x1 branches (+11K parameters). ECBSR's comparable M10C32
configuration reports 37.76 dB on Set5 x2 after DIV2K training, above VDSR's 37.53, which is
why this size was chosen.

The shipped weights are deeper, 24 blocks (227K / 231K / 237K parameters at x2 / x3 / x4;
56.4K / 25.5K / 14.7K multiply-adds per output pixel, a 12th, a 26th and a 45th of VDSR). On this project's
114 training photos the smaller models had flattened or were rising only slowly, so they were
grown (:meth:`SwiftRep.init_unmatched`) and trained on. A weight file records its own
``blocks``, which loading uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.contract import Contract
from superres.models.registry import ModelSpec, register


class RepConv3x3(nn.Module):
    """3x3 conv + 1x1 conv + identity in training; one 3x3 conv after :meth:`reparameterize`."""

    def __init__(self, channels: int, *, reparameterized: bool = False):
        super().__init__()
        self.channels = channels
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = None if reparameterized else nn.Conv2d(channels, channels, 1)

    @property
    def reparameterized(self) -> bool:
        return self.conv1 is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1 is None:
            return self.conv3(x)
        return self.conv3(x) + self.conv1(x) + x

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the 1x1 and identity branches into the 3x3 kernel, in place."""
        if self.conv1 is None:
            return
        kernel = self.conv3.weight + F.pad(self.conv1.weight, (1, 1, 1, 1))
        self.conv3.weight.copy_(kernel + self._identity_kernel())
        self.conv3.bias.add_(self.conv1.bias)
        self.conv1 = None

    def _identity_kernel(self) -> torch.Tensor:
        """The 3x3 kernel that passes each channel through: the identity branch, fused."""
        kernel = torch.zeros_like(self.conv3.weight)
        kernel[torch.arange(self.channels), torch.arange(self.channels), 1, 1] = 1.0
        return kernel

    @torch.no_grad()
    def make_identity(self) -> None:
        """Zero the learnt branches, in either form, so the block passes its input through."""
        self.conv3.bias.zero_()
        if self.conv1 is None:
            self.conv3.weight.copy_(self._identity_kernel())
            return
        self.conv3.weight.zero_()
        self.conv1.weight.zero_()
        self.conv1.bias.zero_()


class SwiftRep(nn.Module):
    """The flagship: a plain LR-space conv net, re-parameterisable, with an anchor residual."""

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        features: int = 32,
        blocks: int = 10,
        reparameterized: bool = False,
    ):
        super().__init__()
        self.scale = scale
        # 3x3 head, blocks, tail: one input pixel each; the anchor and the shuffle add none.
        self.contract = Contract(channels=channels, receptive_radius=blocks + 2, fusable=True)
        self.channels = channels
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.body = nn.ModuleList(RepConv3x3(features, reparameterized=reparameterized) for _ in range(blocks))
        self.acts = nn.ModuleList(nn.PReLU(features) for _ in range(blocks))
        self.tail = nn.Conv2d(features, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        # The tail starts near zero so that an untrained model is nearest-neighbour upscaling.
        nn.init.normal_(self.tail.weight, std=1e-3)
        nn.init.zeros_(self.tail.bias)

    @property
    def reparameterized(self) -> bool:
        return all(block.reparameterized for block in self.body)

    @torch.no_grad()
    def init_unmatched(self, names: list[str]) -> None:
        """Make every body block none of whose tensors came from a checkpoint an exact
        identity (zero 3x3 and 1x1 convolutions around the identity branch, PReLU slope 1),
        so a deeper SwiftRep started from a shallower one computes the same function at step
        0 and training grows it from there."""
        unmatched = set(names)
        for i, (block, act) in enumerate(zip(self.body, self.acts)):
            own = {f"body.{i}.{k}" for k in block.state_dict()} | {f"acts.{i}.{k}" for k in act.state_dict()}
            if not own <= unmatched:
                continue
            block.make_identity()
            act.weight.fill_(1.0)

    @torch.no_grad()
    def adopt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` (another SwiftRep's tensors) in this model's form, for ``init_from``: a fused
        block (the shipped form: one 3x3 kernel holding all three branches) becomes a training
        block that computes the same function, its 3x3 branch the fused kernel less the
        identity, its 1x1 branch zero. Fine-tuning a shipped model then starts from exactly
        that model, not from its 3x3 kernels plus random 1x1 branches."""
        out = dict(state)
        for i, block in enumerate(self.body):
            key = f"body.{i}.conv3.weight"
            fused = key in state and f"body.{i}.conv1.weight" not in state
            if block.reparameterized or not fused or state[key].shape != block.conv3.weight.shape:
                continue
            out[key] = state[key] - block._identity_kernel().to(state[key].dtype)
            out[f"body.{i}.conv1.weight"] = torch.zeros_like(block.conv1.weight)
            out[f"body.{i}.conv1.bias"] = torch.zeros_like(block.conv1.bias)
        return out

    def reparameterize(self) -> "SwiftRep":
        """Fuse every training-time block into a plain 3x3 convolution; returns self."""
        for block in self.body:
            block.reparameterize()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.head(x)  # (B, F, H, W)
        h = shallow
        for conv, act in zip(self.body, self.acts):
            h = act(conv(h))
        residual = self.tail(h + shallow)  # (B, C*s*s, H, W)
        anchor = x.repeat_interleave(self.scale * self.scale, dim=1)  # (B, C*s*s, H, W)
        return self.shuffle(residual + anchor)  # (B, C, sH, sW)


register(ModelSpec("swiftrep", SwiftRep, scales=(2, 3, 4, 8), paper="superres (RepVGG/ECBSR-style re-parameterisation, ABPN anchor)"))
# The same network trained on Real-ESRGAN's second-order degradations (configs/swiftrep_real_*.yaml).
register(ModelSpec(
    "swiftrep-real", SwiftRep, scales=(2, 4), defaults={"blocks": 24}, trained_for="real",
    paper="superres: SwiftRep on Real-ESRGAN's degradations (Wang et al., ICCVW 2021)",
))
# The same network for the light degradations of everyday photos (configs/swiftrep_light_x4.yaml:
# Gaussian noise of sigma 0-12 and JPEG of quality 30-95): better than swiftrep-real on JPEGs,
# noisy and clean inputs, and than the clean model on JPEGs of quality 75 and below.
register(ModelSpec(
    "swiftrep-light", SwiftRep, scales=(4,), defaults={"blocks": 24}, trained_for="real",
    paper="superres: SwiftRep on light noise and JPEG (first-order degradations)",
))
# Fine-tuned from swiftrep-real with a GAN (configs/swiftrep_real_gan_x4.yaml): sharper texture
# for a little PSNR; --strength blends its weights with swiftrep-real's (ESRGAN's interpolation).
register(ModelSpec(
    "swiftrep-real-gan", SwiftRep, scales=(4,), defaults={"blocks": 24}, trained_for="real", fidelity="swiftrep-real",
    paper="superres: swiftrep-real fine-tuned with a U-Net GAN and feature matching (Real-ESRGAN; pix2pixHD)",
))
