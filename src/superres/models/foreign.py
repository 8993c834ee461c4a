"""Foreign checkpoints: the authors' own PyTorch releases, recognised from their keys alone.

A foreign file is read as a bare state dict (``torch.load(..., weights_only=True)``, never a
free unpickling; or a safetensors file without superres metadata), unwrapped from training
wrappers (``params_ema``, ``params``, ``state_dict``, ``model``) and ``module.`` prefixes, and
then matched against the layouts below. A layout that matches yields the registry name, the
scale and the hyperparameters read off the tensors' shapes, and its keys renamed to ours;
the model is built with :func:`superres.models.create` and loaded strictly, so a file that
does not fit raises :class:`CheckpointError` naming the keys or shapes at fault.

Recognised layouts (key names as the authors publish them):

- EDSR-PyTorch (Lim et al.): EDSR and EDSR-baseline: ``sub_mean``, ``head.0``,
  ``body.N.body.{0,2}``, ``body.<blocks>``, ``tail.0.<k>``, ``tail.1``.
- RCAN (Zhang et al., the authors' code): ``body.G.body.B.body.{0,2}``,
  ``body.G.body.B.body.3.conv_du.{0,2}``, ``body.G.body.<blocks>``, ``body.<groups>``.
- ESRGAN, original release: ``model.0``, ``model.1.sub.N.RDB{1,2,3}.conv{1..5}.0``,
  ``model.1.sub.<blocks>``, ``model.{3,6,...}`` (upsampling), then the HR and last convs.
- ESRGAN, the repository's later ``RRDBNet_arch.py``: ``conv_first``, ``RRDB_trunk.N.RDB1``,
  ``trunk_conv``, ``upconv1``, ``HRconv``, ``conv_last``.
- BasicSR / Real-ESRGAN RRDBNet: ``conv_first``, ``body.N.rdb1.conv1``, ``conv_body``,
  ``conv_up1``, ``conv_hr``, ``conv_last``; x2 and x1 models (pixel-unshuffled input) are told
  apart by ``conv_first``'s input channels.
- Real-ESRGAN SRVGGNetCompact: ``body.0`` (conv), ``body.1`` (PReLU), ..., ``body.<last>``.
- IMDN (Hui et al.): ``fea_conv``, ``IMDB1..6.c1..c5``, ``IMDBk.cca.conv_du.{0,2}``, ``c.0``,
  ``LR_conv``, ``upsampler.0``.

Numbers a checkpoint does not store are set as the authors released them: EDSR's residual
scaling is 0.1 for 256-feature models and 1 otherwise; ``rgb_range`` (255 for every release
of EDSR and RCAN) is read off the mean-shift bias.

Anything else is handed to spandrel if it is installed (``pip install "superres[spandrel]"``);
spandrel models can be run but not re-saved in superres's format (no registry entry).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from superres.extras import install_command
from superres.models.checkpoint import CheckpointError, _few, _first_line, check_state_dict, read_tensors
from superres.models.contract import Contract
from superres.models.edsr import DIV2K_RGB_MEAN
from superres.models.registry import create

__all__ = ["LAYOUTS", "Recognised", "build_recognised", "SpandrelModel", "UnsupportedConfiguration", "load_foreign", "read_state_dict", "recognise"]

StateDict = dict[str, torch.Tensor]
# A rename rule: a regular expression and its replacement (a template or a function of the match).
Rule = tuple[str, "str | Callable[[re.Match], str]"]

_WRAPPERS = ("params_ema", "params", "state_dict", "model")


@dataclass
class Recognised:
    """A foreign state dict identified: what to build and the state dict in our key names."""

    layout: str
    arch: str
    scale: int
    hyperparameters: dict
    state: StateDict


class UnsupportedConfiguration(CheckpointError):
    """A recognised layout in a configuration our implementations do not build."""


# --------------------------------------------------------------------------------------
# Reading and unwrapping


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """The tensors of a ``.pth``/``.pt``/``.ckpt`` or safetensors file, unwrapped and de-prefixed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {str(path)!r}: no such file")
    return _unwrap(read_tensors(path), str(path))


def _unwrap(obj: object, source: str) -> StateDict:
    while isinstance(obj, dict):
        wrapper = next((k for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj:
        found = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise CheckpointError(f"{source!r} holds no state dict (found {found})")
    not_tensors = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(f"{source!r} is not a state dict of tensors: entries {_few(not_tensors)} are not tensors")
    # DataParallel / DistributedDataParallel checkpoints prefix every key with "module.".
    return {(k.removeprefix("module.")): v for k, v in obj.items()}


# --------------------------------------------------------------------------------------
# Helpers shared by the layouts


def _rename(state: StateDict, rules: list[Rule]) -> StateDict:
    """Apply every rule, in order, to every key; keys no rule touches are kept as they are."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out = {}
    for key, value in state.items():
        for pattern, replacement in compiled:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def _indices(state: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over all keys."""
    regex = re.compile(pattern)
    return sorted({int(m[1]) for k in state if (m := regex.fullmatch(k))})


def _count(state: StateDict, pattern: str) -> int:
    """How many consecutive indices 0, 1, 2, ... ``pattern`` finds (a gap ends the count)."""
    found = set(_indices(state, pattern))
    n = 0
    while n in found:
        n += 1
    return n


def _square_root(value: float, what: str) -> int:
    root = round(math.sqrt(value))
    if root * root != value:
        raise UnsupportedConfiguration(f"{what} is {value}, not a square")
    return root


def _pixel_shuffle_scale(state: StateDict, prefix: str, features: int) -> int:
    """The scale of EDSR's upsampler ``prefix.<k>`` (x2 stages, or a single x3 stage)."""
    stages = _indices(state, rf"{re.escape(prefix)}\.(\d+)\.weight")
    if not stages:
        raise KeyError(f"{prefix}.0.weight")
    widths = {state[f"{prefix}.{k}.weight"].shape[0] // features for k in stages}
    if widths == {9} and len(stages) == 1:
        return 3
    if widths == {4}:
        return 2 ** len(stages)
    raise UnsupportedConfiguration(f"upsampler {prefix} widens features by {sorted(widths)}, expected 4 (x2 stages) or 9 (x3)")


def _rgb_range(state: StateDict) -> float:
    # The authors' mean shift stores -rgb_range * mean as its bias; their releases use 255.
    bias = state["sub_mean.bias"]
    return 255.0 if float(bias.abs().max()) > 2 * max(DIV2K_RGB_MEAN) else 1.0


def _has(state: StateDict, *keys: str) -> bool:
    return all(k in state for k in keys)


# --------------------------------------------------------------------------------------
# The layouts: each is (name, does-it-match, read). `read` may raise KeyError for a key it
# needs (reported as a broken checkpoint) or UnsupportedConfiguration (handed to spandrel).


def _is_edsr(state: StateDict) -> bool:
    return _has(state, "head.0.weight", "body.0.body.0.weight", "tail.0.0.weight", "tail.1.weight")


def _read_edsr(state: StateDict) -> Recognised:
    features, channels = state["head.0.weight"].shape[:2]
    blocks = _count(state, r"body\.(\d+)\.body\.0\.weight")
    scale = _pixel_shuffle_scale(state, "tail.0", features)
    hyperparameters = {
        "channels": channels,
        "features": features,
        "blocks": blocks,
        # Not stored in the file: the authors used 0.1 for their 256-feature EDSR only.
        "res_scale": 0.1 if features == 256 else 1.0,
        "rgb_range": _rgb_range(state),
    }
    rules: list[Rule] = [
        (r"^head\.0\.", "head."),
        (r"^body\.(\d+)\.body\.0\.", r"body.\1.conv1."),
        (r"^body\.(\d+)\.body\.2\.", r"body.\1.conv2."),
        (rf"^body\.{blocks}\.", "body_conv."),
        (r"^tail\.0\.", "upsample."),
        (r"^tail\.1\.", "tail."),
    ]
    arch = "edsr" if (features, blocks) == (256, 32) else "edsr-baseline"
    return Recognised("EDSR-PyTorch", arch, scale, hyperparameters, _rename(state, rules))


def _is_rcan(state: StateDict) -> bool:
    return _has(state, "head.0.weight", "body.0.body.0.body.0.weight", "body.0.body.0.body.3.conv_du.0.weight", "tail.1.weight")


def _read_rcan(state: StateDict) -> Recognised:
    features, channels = state["head.0.weight"].shape[:2]
    groups = _count(state, r"body\.(\d+)\.body\.0\.body\.0\.weight")
    blocks = _count(state, r"body\.0\.body\.(\d+)\.body\.0\.weight")
    squeezed = state["body.0.body.0.body.3.conv_du.0.weight"].shape[0]
    hyperparameters = {
        "channels": channels,
        "features": features,
        "groups": groups,
        "blocks": blocks,
        "reduction": features // squeezed,
        "rgb_range": _rgb_range(state),
    }
    block = r"^body\.(\d+)\.body\.(\d+)\.body\."
    rules: list[Rule] = [
        (r"^head\.0\.", "head."),
        (block + r"0\.", r"groups.\1.blocks.\2.conv1."),
        (block + r"2\.", r"groups.\1.blocks.\2.conv2."),
        (block + r"3\.conv_du\.0\.", r"groups.\1.blocks.\2.attention.down."),
        (block + r"3\.conv_du\.2\.", r"groups.\1.blocks.\2.attention.up."),
        (rf"^body\.(\d+)\.body\.{blocks}\.", r"groups.\1.conv."),
        (rf"^body\.{groups}\.", "body_conv."),
        (r"^tail\.0\.", "upsample."),
        (r"^tail\.1\.", "tail."),
    ]
    scale = _pixel_shuffle_scale(state, "tail.0", features)
    return Recognised("RCAN", "rcan", scale, hyperparameters, _rename(state, rules))


def _rrdbnet(layout: str, state: StateDict, *, first: str, last: str, up_stages: int) -> Recognised:
    """Hyperparameters of an RRDBNet already renamed to our keys, whatever the source layout."""
    features, in_channels = state[f"{first}.weight"].shape[:2]
    channels = state[f"{last}.weight"].shape[0]
    unshuffle = _square_root(in_channels / channels, "input channels / output channels")
    # Ours builds x1, x2, x4 as unshuffle 4, 2, 1 then two x2 stages, and x8 as three stages.
    supported = {(4, 2): 1, (2, 2): 2, (1, 2): 4, (1, 3): 8}
    if (unshuffle, up_stages) not in supported:
        raise UnsupportedConfiguration(f"RRDBNet with {up_stages} upsampling stage(s) after a pixel-unshuffle by {unshuffle}")
    scale = supported[unshuffle, up_stages]
    hyperparameters = {
        "channels": channels,
        "features": features,
        "blocks": _count(state, r"body\.(\d+)\.rdb1\.conv1\.weight"),
        "growth": state["body.0.rdb1.conv1.weight"].shape[0],
    }
    return Recognised(layout, "rrdbnet", scale, hyperparameters, state)


def _is_esrgan_original(state: StateDict) -> bool:
    # ESRGAN+ adds 1x1 convs inside the dense blocks: a different network, left to spandrel.
    return _has(state, "model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight") and not any(".conv1x1." in k for k in state)


def _read_esrgan_original(state: StateDict) -> Recognised:
    blocks = _count(state, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight")
    # After the trunk come (upsample, conv, LeakyReLU) per stage, then HR conv, LeakyReLU, last conv.
    tops = [i for i in _indices(state, r"model\.(\d+)\.weight") if i >= 2]
    if len(tops) < 2:
        raise KeyError("model.<last>.weight")
    *ups, hr, last = tops
    rules: list[Rule] = [
        (r"^model\.0\.", "conv_first."),
        (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
        (rf"^model\.1\.sub\.{blocks}\.", "conv_body."),
        *((rf"^model\.{index}\.", f"conv_up.{stage}.") for stage, index in enumerate(ups)),
        (rf"^model\.{hr}\.", "conv_hr."),
        (rf"^model\.{last}\.", "conv_last."),
    ]
    renamed = _rename(state, rules)
    return _rrdbnet("ESRGAN (original)", renamed, first="conv_first", last="conv_last", up_stages=len(ups))


def _is_esrgan_rrdbnet_arch(state: StateDict) -> bool:
    return _has(state, "conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight")


def _read_esrgan_rrdbnet_arch(state: StateDict) -> Recognised:
    ups = _indices(state, r"upconv(\d+)\.weight")
    rules: list[Rule] = [
        (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
        (r"^trunk_conv\.", "conv_body."),
        (r"^upconv(\d+)\.", lambda m: f"conv_up.{int(m[1]) - 1}."),
        (r"^HRconv\.", "conv_hr."),
    ]
    renamed = _rename(state, rules)
    return _rrdbnet("ESRGAN (RRDBNet_arch.py)", renamed, first="conv_first", last="conv_last", up_stages=len(ups))


def _is_basicsr_rrdbnet(state: StateDict) -> bool:
    return _has(state, "conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight")


def _read_basicsr_rrdbnet(state: StateDict) -> Recognised:
    ups = _indices(state, r"conv_up(\d+)\.weight")
    renamed = _rename(state, [(r"^conv_up(\d+)\.", lambda m: f"conv_up.{int(m[1]) - 1}.")])
    return _rrdbnet("BasicSR / Real-ESRGAN RRDBNet", renamed, first="conv_first", last="conv_last", up_stages=len(ups))


def _is_srvggnet(state: StateDict) -> bool:
    # Conv, PReLU, conv, PReLU, ..., conv: odd entries are 1-D PReLU slopes.
    return (
        _has(state, "body.0.weight", "body.1.weight")
        and state["body.0.weight"].ndim == 4
        and state["body.1.weight"].ndim == 1
        and all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in state)
    )


def _read_srvggnet(state: StateDict) -> Recognised:
    features, channels = state["body.0.weight"].shape[:2]
    last = max(_indices(state, r"body\.(\d+)\.weight"))
    if last % 2 or last < 2:
        raise UnsupportedConfiguration(f"SRVGGNetCompact whose last layer is body.{last} (expected an even index)")
    hyperparameters = {"channels": channels, "features": features, "convs": last // 2 - 1}
    scale = _square_root(state[f"body.{last}.weight"].shape[0] / channels, "last conv's channels / input channels")
    return Recognised("Real-ESRGAN SRVGGNetCompact", "srvggnet-compact", scale, hyperparameters, state)


def _is_imdn(state: StateDict) -> bool:
    return _has(state, "fea_conv.weight", "IMDB1.c1.weight", "c.0.weight", "LR_conv.weight", "upsampler.0.weight")


def _read_imdn(state: StateDict) -> Recognised:
    features, channels = state["fea_conv.weight"].shape[:2]
    blocks = len(_indices(state, r"IMDB(\d+)\.c1\.weight"))
    scale = _square_root(state["upsampler.0.weight"].shape[0] / channels, "upsampler channels / input channels")
    rules: list[Rule] = [
        (r"^fea_conv\.", "head."),
        (r"^IMDB(\d+)\.", lambda m: f"blocks.{int(m[1]) - 1}."),
        (r"\.cca\.conv_du\.0\.", ".attention.down."),
        (r"\.cca\.conv_du\.2\.", ".attention.up."),
        (r"^c\.0\.", "fuse."),
        (r"^LR_conv\.", "body_conv."),
        (r"^upsampler\.0\.", "tail."),
    ]
    hyperparameters = {"channels": channels, "features": features, "blocks": blocks}
    return Recognised("IMDN", "imdn", scale, hyperparameters, _rename(state, rules))


_LAYOUTS: list[tuple[str, Callable[[StateDict], bool], Callable[[StateDict], Recognised]]] = [
    ("RCAN", _is_rcan, _read_rcan),
    ("EDSR-PyTorch", _is_edsr, _read_edsr),
    ("ESRGAN (original)", _is_esrgan_original, _read_esrgan_original),
    ("ESRGAN (RRDBNet_arch.py)", _is_esrgan_rrdbnet_arch, _read_esrgan_rrdbnet_arch),
    ("BasicSR / Real-ESRGAN RRDBNet", _is_basicsr_rrdbnet, _read_basicsr_rrdbnet),
    ("Real-ESRGAN SRVGGNetCompact", _is_srvggnet, _read_srvggnet),
    ("IMDN", _is_imdn, _read_imdn),
]
#: The names of the layouts :func:`recognise` knows, in the order it tries them.
LAYOUTS = tuple(name for name, _, _ in _LAYOUTS)


def recognise(state: StateDict, source: str = "state dict") -> Recognised | None:
    """Identify a foreign state dict; ``None`` if no layout matches.

    Raises :class:`CheckpointError` if a layout matches but a key it needs to read the
    hyperparameters is missing, and :class:`UnsupportedConfiguration` if the layout matches
    in a configuration our implementation does not build.
    """
    for name, matches, read in _LAYOUTS:
        if matches(state):
            try:
                return read(state)
            except (KeyError, IndexError) as exc:
                raise CheckpointError(f"{source!r} looks like {name} but lacks {_first_line(exc)}") from None
    return None


# --------------------------------------------------------------------------------------
# Loading


def load_foreign(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load an authors' checkpoint into our implementation, detecting architecture and scale
    (the model as :func:`build_recognised` makes it)."""
    source = str(path)
    state = read_state_dict(path)
    try:
        found = recognise(state, source)
    except UnsupportedConfiguration as exc:
        return _load_with_spandrel(state, source, reason=str(exc)).to(map_location)
    if found is None:
        return _load_with_spandrel(state, source, reason="architecture not recognised").to(map_location)
    return build_recognised(found, source).to(map_location).eval()


def build_recognised(found: Recognised, source: str) -> nn.Module:
    """Our model for a recognised foreign file, its weights loaded strictly. It carries
    ``scale``, ``superres_arch`` and ``superres_hyperparameters`` (as :func:`superres.models.create`
    sets them), so :func:`superres.models.save` can write it in superres's format, and
    ``superres_metadata["source"]`` naming the layout it came in."""
    try:
        model = create(found.arch, scale=found.scale, **found.hyperparameters)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source!r} ({found.layout}): {exc}") from None
    try:
        check_state_dict(model, found.state, source)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (read as {found.layout}: {found.arch} x{found.scale}, keys renamed to ours)") from None
    model.load_state_dict(found.state)
    model.superres_metadata = {
        "arch": found.arch,
        "scale": found.scale,
        "hyperparameters": model.superres_hyperparameters,
        "source": found.layout,
    }
    return model


class SpandrelModel(nn.Module):
    """A network spandrel loaded, behind superres's interface (RGB in [0, 1], scale x size)."""

    def __init__(self, descriptor):
        super().__init__()
        self.net = descriptor.model  # registered, so .to() and .eval() reach it
        self.scale = descriptor.scale
        self.spandrel_architecture = descriptor.architecture.id
        # spandrel's descriptors declare their input channels; the descriptor pads sizes itself.
        self.contract = Contract(channels=getattr(descriptor, "input_channels", 3))
        self._descriptor = descriptor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The descriptor pads inputs to the network's size requirements and crops the result.
        return self._descriptor(x)  # (B, C, sH, sW)


def _load_with_spandrel(state: StateDict, source: str, *, reason: str) -> nn.Module:
    try:
        import spandrel  # pyright: ignore[reportMissingImports]  (an extra kept out of [test]: it pulls a CUDA torch)
    except ImportError:
        raise CheckpointError(
            f"{source!r}: {reason} (keys {_few(sorted(state))}); "
            f"{install_command('spandrel')} may load it"
        ) from None
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise CheckpointError(f"{source!r}: {reason}, and spandrel does not recognise it either (keys {_few(sorted(state))})") from None
    except Exception as exc:  # noqa: BLE001  (spandrel raises what its architectures raise)
        raise CheckpointError(f"{source!r}: spandrel failed to load it ({_first_line(exc)})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise CheckpointError(f"{source!r}: spandrel loaded a {descriptor.architecture.name} model, which is not an image-to-image model")
    return SpandrelModel(descriptor).eval()
