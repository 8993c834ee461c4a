"""Loading the authors' own checkpoints: layout detection, hyperparameters, exact outputs, errors.

Each test builds a small model of ours, writes its weights under the key names of the
authors' published code (spelled out below, key by key, independently of the renaming rules
in ``foreign.py``), saves that with ``torch.save`` as the authors' scripts do, and checks that
``superres.models.load`` rebuilds the same network: architecture, scale, hyperparameters and
outputs. Sizes are tiny so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import sys

import pytest
import torch
from safetensors.torch import save_file

from superres.models import CheckpointError, create, load, save
from superres.models.foreign import UnsupportedConfiguration, recognise

# --------------------------------------------------------------------------------------
# The authors' key names, written out from their code


def edsr_keys(ours: dict, *, blocks: int) -> dict:
    """EDSR-PyTorch (src/model/edsr.py, common.py): head/body/tail Sequentials, MeanShift convs."""
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        if parts[0] in ("sub_mean", "add_mean"):
            new = key
        elif parts[0] == "head":
            new = f"head.0.{parts[1]}"
        elif parts[0] == "body":  # body.<i>.conv1|conv2.<p> -> body.<i>.body.0|2.<p>
            new = f"body.{parts[1]}.body.{ {'conv1': 0, 'conv2': 2}[parts[2]] }.{parts[3]}"
        elif parts[0] == "body_conv":
            new = f"body.{blocks}.{parts[1]}"
        elif parts[0] == "upsample":  # Upsampler is tail.0, a Sequential of (conv, shuffle) pairs
            new = f"tail.0.{parts[1]}.{parts[2]}"
        elif parts[0] == "tail":
            new = f"tail.1.{parts[1]}"
        out[new] = value
    return out


def rcan_keys(ours: dict, *, groups: int, blocks: int) -> dict:
    """RCAN (RCAN_TestCode/code/model/rcan.py): RCAB body = [conv, ReLU, conv, CALayer]."""
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        if parts[0] == "groups":
            g = parts[1]
            if parts[2] == "conv":
                new = f"body.{g}.body.{blocks}.{parts[3]}"
            else:
                b, layer = parts[3], parts[4]
                if layer == "attention":
                    new = f"body.{g}.body.{b}.body.3.conv_du.{ {'down': 0, 'up': 2}[parts[5]] }.{parts[6]}"
                else:
                    new = f"body.{g}.body.{b}.body.{ {'conv1': 0, 'conv2': 2}[layer] }.{parts[5]}"
        elif parts[0] == "body_conv":
            new = f"body.{groups}.{parts[1]}"
        elif parts[0] == "head":
            new = f"head.0.{parts[1]}"
        elif parts[0] == "upsample":
            new = f"tail.0.{parts[1]}.{parts[2]}"
        elif parts[0] == "tail":
            new = f"tail.1.{parts[1]}"
        else:
            new = key
        out[new] = value
    return out


def esrgan_original_keys(ours: dict, *, blocks: int, stages: int) -> dict:
    """ESRGAN's first release (architecture.py + block.py): one flattened Sequential `model`.

    model.0 conv; model.1 = ShortcutBlock(sub = RRDBs + conv), every conv_block a Sequential
    (conv, act) so RDB convs are `.0`; then per stage (Upsample, conv, LeakyReLU); HR conv,
    LeakyReLU, last conv.
    """
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        name, p = parts[0], parts[-1]
        if name == "conv_first":
            new = f"model.0.{p}"
        elif name == "body":  # body.<i>.rdb<r>.conv<c>.<p>
            new = f"model.1.sub.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.0.{p}"
        elif name == "conv_body":
            new = f"model.1.sub.{blocks}.{p}"
        elif name == "conv_up":
            new = f"model.{3 * (int(parts[1]) + 1)}.{p}"
        elif name == "conv_hr":
            new = f"model.{3 * stages + 2}.{p}"
        elif name == "conv_last":
            new = f"model.{3 * stages + 4}.{p}"
        out[new] = value
    return out


def esrgan_rrdbnet_arch_keys(ours: dict) -> dict:
    """ESRGAN's later RRDBNet_arch.py: conv_first, RRDB_trunk.N.RDB1.conv1, trunk_conv, upconv1, HRconv."""
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        if parts[0] == "body":
            new = f"RRDB_trunk.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.{parts[4]}"
        elif parts[0] == "conv_body":
            new = f"trunk_conv.{parts[1]}"
        elif parts[0] == "conv_up":
            new = f"upconv{int(parts[1]) + 1}.{parts[2]}"
        elif parts[0] == "conv_hr":
            new = f"HRconv.{parts[1]}"
        else:
            new = key
        out[new] = value
    return out


def basicsr_rrdbnet_keys(ours: dict) -> dict:
    """BasicSR's rrdbnet_arch.py (Real-ESRGAN's RRDBNet): our names except conv_up1, conv_up2."""
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        new = f"conv_up{int(parts[1]) + 1}.{parts[2]}" if parts[0] == "conv_up" else key
        out[new] = value
    return out


def imdn_keys(ours: dict) -> dict:
    """IMDN (model/architecture.py, block.py): fea_conv, IMDB1..6 (c1..c5, cca.conv_du), c.0, LR_conv, upsampler.0."""
    out = {}
    for key, value in ours.items():
        parts = key.split(".")
        if parts[0] == "head":
            new = f"fea_conv.{parts[1]}"
        elif parts[0] == "blocks":
            block = f"IMDB{int(parts[1]) + 1}"
            if parts[2] == "attention":
                new = f"{block}.cca.conv_du.{ {'down': 0, 'up': 2}[parts[3]] }.{parts[4]}"
            else:
                new = f"{block}.{parts[2]}.{parts[3]}"
        elif parts[0] == "fuse":
            new = f"c.0.{parts[1]}"
        elif parts[0] == "body_conv":
            new = f"LR_conv.{parts[1]}"
        elif parts[0] == "tail":
            new = f"upsampler.0.{parts[1]}"
        out[new] = value
    return out


def authors_state(model, to_authors, **kwargs) -> dict:
    ours = model.state_dict()
    theirs = to_authors(ours, **kwargs)
    assert len(theirs) == len(ours)  # the key mapping is one to one
    return theirs


def randomise(model):
    # Untrained layers (zero tails, near-identity blocks) could hide a wrong key mapping.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return model.eval()


def assert_same_outputs(loaded, source, size=(7, 5)):
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)


# --------------------------------------------------------------------------------------
# Each layout loads


CASES = {
    # id: (registry name, scale, our hyperparameters, author key function + its arguments,
    #      expected layout, expected hyperparameters read back, literal author keys to expect)
    "edsr-baseline-x2": (
        "edsr-baseline", 2, {"features": 16, "blocks": 2, "rgb_range": 255.0},
        (edsr_keys, {"blocks": 2}), "EDSR-PyTorch",
        {"channels": 3, "features": 16, "blocks": 2, "res_scale": 1.0, "rgb_range": 255.0},
        ["sub_mean.bias", "head.0.weight", "body.1.body.2.weight", "body.2.weight", "tail.0.0.weight", "tail.1.bias"],
    ),
    "edsr-x3-res-scale": (
        "edsr-baseline", 3, {"features": 256, "blocks": 1, "res_scale": 0.1, "rgb_range": 255.0},
        (edsr_keys, {"blocks": 1}), "EDSR-PyTorch",
        {"channels": 3, "features": 256, "blocks": 1, "res_scale": 0.1, "rgb_range": 255.0},
        ["tail.0.0.weight", "body.1.bias"],
    ),
    "edsr-baseline-x4-range-1": (
        "edsr-baseline", 4, {"features": 8, "blocks": 1},
        (edsr_keys, {"blocks": 1}), "EDSR-PyTorch",
        {"channels": 3, "features": 8, "blocks": 1, "res_scale": 1.0, "rgb_range": 1.0},
        ["tail.0.0.weight", "tail.0.2.weight"],
    ),
    "rcan-x4": (
        "rcan", 4, {"features": 32, "groups": 2, "blocks": 3, "rgb_range": 255.0},
        (rcan_keys, {"groups": 2, "blocks": 3}), "RCAN",
        {"channels": 3, "features": 32, "groups": 2, "blocks": 3, "reduction": 16, "rgb_range": 255.0},
        ["body.1.body.2.body.3.conv_du.2.weight", "body.1.body.3.weight", "body.2.bias", "tail.0.2.weight"],
    ),
    "rcan-x8": (
        "rcan", 8, {"features": 16, "groups": 1, "blocks": 1, "reduction": 4, "rgb_range": 255.0},
        (rcan_keys, {"groups": 1, "blocks": 1}), "RCAN",
        {"channels": 3, "features": 16, "groups": 1, "blocks": 1, "reduction": 4, "rgb_range": 255.0},
        ["tail.0.4.weight", "body.0.body.0.body.0.weight"],
    ),
    "esrgan-original-x4": (
        "rrdbnet", 4, {"features": 16, "blocks": 2, "growth": 8},
        (esrgan_original_keys, {"blocks": 2, "stages": 2}), "ESRGAN (original)",
        {"channels": 3, "features": 16, "blocks": 2, "growth": 8},
        ["model.0.weight", "model.1.sub.1.RDB3.conv5.0.weight", "model.1.sub.2.weight", "model.3.weight", "model.6.weight", "model.8.weight", "model.10.bias"],
    ),
    "esrgan-original-x8": (
        "rrdbnet", 8, {"features": 8, "blocks": 1, "growth": 4},
        (esrgan_original_keys, {"blocks": 1, "stages": 3}), "ESRGAN (original)",
        {"channels": 3, "features": 8, "blocks": 1, "growth": 4},
        ["model.9.weight", "model.11.weight", "model.13.weight"],
    ),
    "esrgan-rrdbnet-arch-x4": (
        "rrdbnet", 4, {"features": 16, "blocks": 2, "growth": 8},
        (esrgan_rrdbnet_arch_keys, {}), "ESRGAN (RRDBNet_arch.py)",
        {"channels": 3, "features": 16, "blocks": 2, "growth": 8},
        ["RRDB_trunk.1.RDB2.conv3.weight", "trunk_conv.weight", "upconv2.weight", "HRconv.weight", "conv_last.weight"],
    ),
    "realesrgan-x4plus": (
        "rrdbnet", 4, {"features": 16, "blocks": 2, "growth": 8},
        (basicsr_rrdbnet_keys, {}), "BasicSR / Real-ESRGAN RRDBNet",
        {"channels": 3, "features": 16, "blocks": 2, "growth": 8},
        ["conv_first.weight", "body.1.rdb3.conv5.bias", "conv_body.weight", "conv_up1.weight", "conv_up2.weight", "conv_hr.weight"],
    ),
    "realesrgan-x2plus": (
        "rrdbnet", 2, {"features": 16, "blocks": 1, "growth": 8},
        (basicsr_rrdbnet_keys, {}), "BasicSR / Real-ESRGAN RRDBNet",
        {"channels": 3, "features": 16, "blocks": 1, "growth": 8},
        ["conv_first.weight", "conv_up2.weight"],
    ),
    "realesrgan-x1": (
        "rrdbnet", 1, {"features": 16, "blocks": 1, "growth": 8},
        (basicsr_rrdbnet_keys, {}), "BasicSR / Real-ESRGAN RRDBNet",
        {"channels": 3, "features": 16, "blocks": 1, "growth": 8},
        ["conv_first.weight"],
    ),
    "srvggnet-compact-x4": (
        "srvggnet-compact", 4, {"features": 8, "convs": 3},
        (lambda ours: dict(ours), {}), "Real-ESRGAN SRVGGNetCompact",
        {"channels": 3, "features": 8, "convs": 3},
        ["body.0.weight", "body.1.weight", "body.7.weight", "body.8.weight", "body.8.bias"],
    ),
    "imdn-x2": (
        "imdn", 2, {"features": 16},
        (imdn_keys, {}), "IMDN",
        {"channels": 3, "features": 16, "blocks": 6},
        ["fea_conv.weight", "IMDB6.c5.weight", "IMDB1.cca.conv_du.0.weight", "IMDB3.cca.conv_du.2.bias", "c.0.weight", "LR_conv.weight", "upsampler.0.weight"],
    ),
    "imdn-x4": (
        "imdn", 4, {"features": 32},
        (imdn_keys, {}), "IMDN",
        {"channels": 3, "features": 32, "blocks": 6},
        ["IMDB4.c4.bias", "upsampler.0.bias"],
    ),
}

# How each case is stored: as the authors' scripts save it, or inside a training wrapper.
WRAPPING = {
    "edsr-baseline-x2": "plain",
    "edsr-x3-res-scale": "plain",
    "edsr-baseline-x4-range-1": "module",
    "rcan-x4": "module",
    "rcan-x8": "plain",
    "esrgan-original-x4": "plain",
    "esrgan-original-x8": "plain",
    "esrgan-rrdbnet-arch-x4": "plain",
    "realesrgan-x4plus": "params_ema",
    "realesrgan-x2plus": "params_ema",
    "realesrgan-x1": "params_ema+module",
    "srvggnet-compact-x4": "params",
    "imdn-x2": "module",
    "imdn-x4": "plain",
}


def wrap(state: dict, how: str) -> dict:
    if "module" in how:
        state = {f"module.{k}": v for k, v in state.items()}
    if how.startswith("params_ema"):
        # BasicSR saves both the raw and the EMA weights; the EMA ones are the release.
        return {"params": {k: torch.zeros_like(v) for k, v in state.items()}, "params_ema": state}
    if how == "params":
        return {"params": state}
    return state


@pytest.mark.parametrize("case", sorted(CASES))
def test_authors_checkpoint_loads_with_detected_hyperparameters(case, tmp_path):
    name, scale, ours, (to_authors, key_args), layout, expected, literal_keys = CASES[case]
    source = randomise(create(name, scale=scale, **ours))
    if "rgb_range" in ours:
        # The authors' MeanShift bias is -rgb_range * mean; randomise() scrambled ours.
        for shift, sign in (("sub_mean", -1), ("add_mean", 1)):
            getattr(source, shift).bias.copy_(sign * ours["rgb_range"] * torch.tensor([0.4488, 0.4371, 0.4040]))
    theirs = authors_state(source, to_authors, **key_args)
    assert set(literal_keys) <= set(theirs)
    path = tmp_path / f"{case}.pth"
    torch.save(wrap(theirs, WRAPPING[case]), path)

    loaded = load(path)

    assert loaded.superres_arch == name
    assert loaded.scale == scale
    assert loaded.superres_hyperparameters == expected
    assert loaded.superres_metadata["source"] == layout
    assert not loaded.training
    size = (8, 8) if scale == 1 else (7, 5)
    assert_same_outputs(loaded, source, size)

    # Re-saved in our format, it loads back through the registry with the same outputs.
    ours_path = save(loaded, tmp_path / "ours.safetensors", arch=loaded.superres_arch, scale=loaded.scale, hyperparameters=loaded.superres_hyperparameters)
    assert_same_outputs(load(ours_path), source, size)


def test_edsr_paper_configuration_is_named_edsr(tmp_path):
    # Detection only (a 40M-parameter state dict on the meta device costs nothing).
    with torch.device("meta"):
        model = create("edsr", scale=2)
    theirs = edsr_keys(model.state_dict(), blocks=32)
    theirs["sub_mean.bias"] = -255 * torch.tensor([0.4488, 0.4371, 0.4040])
    found = recognise(theirs)
    assert (found.arch, found.scale) == ("edsr", 2)
    assert found.hyperparameters == {"channels": 3, "features": 256, "blocks": 32, "res_scale": 0.1, "rgb_range": 255.0}


def test_safetensors_without_superres_metadata_is_read_as_foreign(tmp_path):
    source = randomise(create("srvggnet-compact", scale=2, features=8, convs=1))
    path = tmp_path / "compact.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = load(path)
    assert (loaded.superres_arch, loaded.scale) == ("srvggnet-compact", 2)
    assert_same_outputs(loaded, source)


# --------------------------------------------------------------------------------------
# Files that do not load give one clear line


def small_edsr_checkpoint() -> dict:
    return authors_state(randomise(create("edsr-baseline", scale=2, features=8, blocks=2)), edsr_keys, blocks=2)


def load_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


def test_corrupted_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x80\x02}q\x00garbage" + bytes(range(256)))
    assert "cannot read" in load_error(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(small_edsr_checkpoint(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "cannot read" in load_error(path)


def test_missing_file(tmp_path):
    assert "no such file" in load_error(tmp_path / "absent.pth")


def test_wrong_shape(tmp_path):
    state = small_edsr_checkpoint()
    state["body.1.body.2.weight"] = torch.zeros(8, 8, 1, 1)
    path = tmp_path / "wrong_shape.pth"
    torch.save(state, path)
    message = load_error(path)
    assert "shape mismatch body.1.conv2.weight (8, 8, 1, 1) != (8, 8, 3, 3)" in message
    assert "EDSR-PyTorch" in message


def test_missing_key(tmp_path):
    state = small_edsr_checkpoint()
    del state["body.0.body.0.bias"]
    path = tmp_path / "missing_key.pth"
    torch.save(state, path)
    assert "missing keys body.0.conv1.bias" in load_error(path)


def test_unexpected_key(tmp_path):
    state = small_edsr_checkpoint()
    state["tail.2.weight"] = torch.zeros(3, 8, 3, 3)
    path = tmp_path / "extra_key.pth"
    torch.save(state, path)
    assert "unexpected keys tail.2.weight" in load_error(path)


def test_missing_key_needed_for_detection(tmp_path):
    state = authors_state(randomise(create("rcan", scale=2, features=16, groups=1, blocks=1, reduction=4)), rcan_keys, groups=1, blocks=1)
    del state["sub_mean.bias"]
    path = tmp_path / "rcan_no_mean.pth"
    torch.save(state, path)
    assert "looks like RCAN but lacks 'sub_mean.bias'" in load_error(path)


def test_pickled_objects_are_refused_not_executed(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "config": Exception("not a tensor")}, path)
    error = load_error(path)
    # Says what the file holds and what superres reads, not torch's advice to unpickle freely.
    assert "pickled exceptions.Exception object" in error and "safetensors" in error
    assert "weights_only=False" not in error and "\n" not in error


def test_non_tensor_entries(tmp_path):
    path = tmp_path / "not_tensors.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    assert "not a state dict of tensors" in load_error(path)


@pytest.fixture
def no_spandrel(monkeypatch):
    # A None entry in sys.modules makes `import spandrel` raise ImportError even if installed.
    monkeypatch.setitem(sys.modules, "spandrel", None)


def test_unknown_architecture_without_spandrel(tmp_path, no_spandrel):
    path = tmp_path / "swinir.pth"
    torch.save({"params": {"patch_embed.norm.weight": torch.ones(4), "layers.0.residual_group.blocks.0.attn.qkv.weight": torch.ones(12, 4)}}, path)
    message = load_error(path)
    assert "architecture not recognised" in message
    assert "pip install 'superres[spandrel]'" in message


def test_recognised_layout_in_unsupported_configuration_without_spandrel(tmp_path, no_spandrel):
    # An ESRGAN-layout x2 model with a single upsampling stage: ours builds x2 by pixel-unshuffle.
    state = esrgan_original_keys(randomise(create("rrdbnet", scale=4, features=8, blocks=1, growth=4)).state_dict(), blocks=1, stages=2)
    state = {k: v for k, v in state.items() if not k.startswith("model.6.")}
    state = {k.replace("model.8.", "model.5.").replace("model.10.", "model.7."): v for k, v in state.items()}
    with pytest.raises(UnsupportedConfiguration):
        recognise(state)
    path = tmp_path / "esrgan_x2.pth"
    torch.save(state, path)
    message = load_error(path)
    assert "1 upsampling stage" in message
    assert "pip install 'superres[spandrel]'" in message


def test_unknown_architecture_goes_to_spandrel_when_installed(tmp_path, monkeypatch):
    # spandrel itself is not installed here (it pulls torchvision); a stand-in with its API
    # checks our side of the hand-over: the state dict goes in, a scale x model comes out.
    import types

    class FakeDescriptor:
        def __init__(self, state):
            self.model = torch.nn.Conv2d(3, 12, 1)
            self.model.weight.data.copy_(state["w"])
            self.scale = 2
            self.architecture = types.SimpleNamespace(id="FakeArch", name="FakeArch")

        def __call__(self, x):
            return torch.nn.functional.pixel_shuffle(self.model(x), 2)

    class FakeLoader:
        def load_from_state_dict(self, state):
            assert set(state) == {"w"}  # unwrapped from params_ema, prefix stripped
            return FakeDescriptor(state)

    fake = types.SimpleNamespace(ModelLoader=FakeLoader, UnsupportedModelError=type("E", (Exception,), {}), ImageModelDescriptor=FakeDescriptor)
    monkeypatch.setitem(sys.modules, "spandrel", fake)
    path = tmp_path / "exotic.pth"
    torch.save({"params_ema": {"module.w": torch.randn(12, 3, 1, 1)}}, path)
    model = load(path)
    assert model.scale == 2 and model.spandrel_architecture == "FakeArch"
    assert not model.training
    assert model(torch.rand(1, 3, 5, 4)).shape == (1, 3, 10, 8)
