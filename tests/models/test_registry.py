"""Registry-wide tests (timm's habit): every registered model at every scale it supports.

A model registered anywhere in the package is picked up here with no test of its own:
output shape = scale x input (odd sizes too), finite outputs, a gradient on every
parameter, and an identical output after a safetensors round trip. Then the registry's
own contract (duplicate names, unknown names, hyperparameters and scales) and the
``superres models`` table.

Cost: inputs are tiny (7x9 LR). Networks above ~5M parameters are built for the gradient
and round-trip tests with fewer blocks (``_SMALLER``): the same classes, blocks and
upsamplers, only repeated fewer times; their shape test runs at full size.
"""

from __future__ import annotations

import pytest
import torch

from superres import cli
from superres.models import create, get_spec, list_specs, load, register, save
from superres.models.checkpoint import model_hyperparameters
from superres.models.summary import _LR_SIZES, count_macs, format_models_table, model_summary

GENERATOR_CASES = [
    pytest.param(spec.name, scale, id=f"{spec.name}-x{scale}")
    for spec in list_specs(generators_only=True)
    for scale in spec.scales
]
DISCRIMINATORS = [spec.name for spec in list_specs() if not spec.is_generator]

# Fewer repeats of the same blocks for the big networks (gradient and round-trip tests only).
_SMALLER = {
    "edsr": {"blocks": 2},  # keeps 256 features and res_scale 0.1, what makes it "edsr"
    "rcan": {"groups": 2, "blocks": 2},
    "rrdbnet": {"blocks": 2},
}

LR_SIZE = (7, 9)  # odd on purpose: padding and cropping paths must give exact sizes


def _build(name: str, scale: int | None, *, small: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(name, scale=scale, **(_SMALLER.get(name, {}) if small else {}))


@pytest.mark.parametrize("name, scale", GENERATOR_CASES)
def test_generator_output_is_scale_times_input_and_finite(name, scale):
    model = _build(name, scale, small=False).eval()
    assert model.scale == scale
    for height, width in (LR_SIZE, (8, 8)):
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, 3, height * scale, width * scale)
        assert y.dtype == x.dtype
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name, scale", GENERATOR_CASES)
def test_generator_gradient_reaches_every_parameter(name, scale):
    model = _build(name, scale, small=True).train()
    # A batch of 2: batch norm needs more than one value per channel. The input takes a
    # gradient too, which also covers the parameter-free bicubic.
    x = torch.rand(2, 3, *LR_SIZE, requires_grad=True)
    target = torch.rand(2, 3, LR_SIZE[0] * scale, LR_SIZE[1] * scale)
    torch.nn.functional.l1_loss(model(x), target).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.any()
    _assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize("name, scale", GENERATOR_CASES)
def test_generator_safetensors_round_trip_gives_identical_outputs(name, scale, tmp_path):
    model = _build(name, scale, small=True)
    _move_every_tensor_off_its_initial_value(model)
    model.eval()
    path = save(model, tmp_path / "model.safetensors", arch=name, scale=scale, hyperparameters=model_hyperparameters(model))
    loaded = load(path)
    assert type(loaded) is type(model)
    assert not loaded.training
    x = torch.rand(1, 3, *LR_SIZE)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# A size each discriminator accepts, and the output shape it must give for a batch of 2.
def _discriminator_case(name: str) -> tuple[int, tuple[int, ...]]:
    model = create(name)
    size = getattr(model, "input_size", None)
    if size is not None:
        return size, (2, 1)
    return 16, (2, 1, 16, 16)  # fully convolutional: a logit per pixel


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_output_shape_and_gradients(name):
    torch.manual_seed(0)
    model = create(name).train()
    assert not get_spec(name).is_generator
    size, expected = _discriminator_case(name)
    logits = model(torch.rand(2, 3, size, size))
    assert logits.shape == expected
    assert torch.isfinite(logits).all()
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    _assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_rejects_a_size_it_cannot_take(name):
    model = create(name).eval()
    with pytest.raises(ValueError, match="got 7x9"):
        model(torch.rand(1, 3, 7, 9))


def _assert_every_parameter_has_a_gradient(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reaches {missing}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad}"
    # Not "non-zero everywhere": a ReLU-gated squeeze-excite bottleneck (RCAN's 64 / 16 = 4
    # units) can legitimately be dead at initialisation for a given input, zeroing its grads.
    params = list(model.parameters())
    assert not params or any(p.grad.any() for p in params)


@torch.no_grad()
def _move_every_tensor_off_its_initial_value(model: torch.nn.Module) -> None:
    """So that a tensor the file forgot cannot pass for one restored from it."""
    # Zero biases, unit BN weights and 0.25 PReLU slopes look the same in a fresh model.
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 1e-2)
    # Running statistics (batch norm) move away from their 0/1 defaults in a training forward.
    model.train()
    model(torch.rand(2, 3, *LR_SIZE))


def test_registering_a_name_twice_raises():
    spec = get_spec("srcnn")
    with pytest.raises(ValueError, match="'srcnn' is already registered"):
        register(spec)
    assert get_spec("srcnn") is spec


def test_unknown_name_lists_every_known_name():
    with pytest.raises(KeyError) as excinfo:
        create("srcnnn", scale=2)
    message = str(excinfo.value)
    assert "unknown model 'srcnnn'" in message
    for spec in list_specs():
        assert spec.name in message


@pytest.mark.parametrize("name", [spec.name for spec in list_specs()])
def test_unknown_hyperparameter_raises_type_error_naming_it(name):
    scale = get_spec(name).scales[0] if get_spec(name).is_generator else None
    with pytest.raises(TypeError, match="featurez"):
        create(name, scale=scale, featurez=16)


@pytest.mark.parametrize("name", [spec.name for spec in list_specs(generators_only=True)])
def test_unsupported_scale_raises(name):
    spec = get_spec(name)
    unsupported = next(s for s in range(1, 32) if s not in spec.scales)
    with pytest.raises(ValueError, match=f"not {unsupported}"):
        create(name, scale=unsupported)
    with pytest.raises(ValueError, match="needs a scale"):
        create(name)


def test_models_command_lists_every_registered_name(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for spec in list_specs():
        assert any(line.split()[:1] == [spec.name] for line in lines), f"{spec.name} missing from:\n{out}"


def test_models_table_is_the_cli_output(capsys):
    cli.main(["models"])
    assert capsys.readouterr().out == format_models_table() + "\n"


def _inference_form(model):
    # Summaries count what inference runs: SwiftRep's fused blocks, not the training form.
    return model.reparameterize() if hasattr(model, "reparameterize") else model


@pytest.mark.parametrize("name", [spec.name for spec in list_specs(generators_only=True)])
def test_multiply_adds_are_affine_in_pixel_count(name):
    # What makes the summary's two-size difference exact (see summary.py): a third size
    # must lie on the same line.
    spec = get_spec(name)
    scale = 4 if 4 in spec.scales else spec.scales[-1]
    with torch.device("meta"):
        model = _inference_form(create(name, scale=scale).eval())
        sides = (*_LR_SIZES, 48)
        macs = [count_macs(model, torch.zeros(1, 3, n, n)) for n in sides]
    slope = (macs[1] - macs[0]) / (sides[1] ** 2 - sides[0] ** 2)
    assert macs[2] - macs[1] == pytest.approx(slope * (sides[2] ** 2 - sides[1] ** 2), rel=1e-12)
    assert model_summary(name, scale).macs_per_output_pixel == pytest.approx(slope / scale**2)


@pytest.mark.parametrize("name", [spec.name for spec in list_specs()])
def test_summary_counts_the_parameters_of_the_built_model(name):
    spec = get_spec(name)
    scale = 4 if spec.is_generator and 4 in spec.scales else (spec.scales[-1] if spec.is_generator else None)
    with torch.device("meta"):
        model = _inference_form(create(name, scale=scale))
    summary = model_summary(name, scale)
    assert summary.parameters == sum(p.numel() for p in model.parameters())
    if spec.is_generator:
        assert summary.macs_per_output_pixel >= 0 and summary.macs_per_image is None
    else:
        assert summary.macs_per_image > 0 and summary.macs_per_output_pixel is None


def test_meta_device_counts_the_same_multiply_adds_as_the_cpu():
    torch.manual_seed(0)
    for name in ("unet-sr", "srresnet"):
        cpu = create(name, scale=4).eval()
        with torch.device("meta"):
            meta = create(name, scale=4).eval()
        assert count_macs(meta, torch.zeros(1, 3, 16, 16, device="meta")) == count_macs(cpu, torch.zeros(1, 3, 16, 16))


def test_model_summary_rejects_a_scale_the_model_does_not_have():
    with pytest.raises(ValueError, match="not 5"):
        model_summary("srresnet", 5)
    with pytest.raises(ValueError, match="discriminator"):
        model_summary("unet-discriminator", 4)
    assert model_summary("srresnet").scale == 4
