"""Every model, however it was made, upscales a colour image through the Upscaler.

The registry-wide guard for a model's declared input contract (``models/contract.py``): every
registered generator at every scale it supports, fresh from the registry (RGB and luma), and
every layout ``models/foreign.py`` accepts at every scale its architecture supports, read
from a file in the authors' key names. RRDBNet at x1 and x2 (Real-ESRGAN's x2plus) once
loaded fine and then refused RGB images because its input channels were guessed from its
first convolution, which sees the pixel-unshuffled 12 or 48.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from superres.inference import Upscaler
from superres.inference.onnx import prepare_for_inference
from superres.models import Contract, create, get_spec, list_specs, load, model_contract
from superres.models.foreign import LAYOUTS
from test_foreign import (
    authors_state,
    basicsr_rrdbnet_keys,
    edsr_keys,
    esrgan_original_keys,
    esrgan_rrdbnet_arch_keys,
    imdn_keys,
    randomise,
    rcan_keys,
)

HEIGHT, WIDTH = 13, 11  # odd, and no multiple of RRDBNet's unshuffle or UNetSR's levels


def _colour_image() -> np.ndarray:
    return np.random.default_rng(0).random((HEIGHT, WIDTH, 3), dtype=np.float32)


def _assert_upscales_colour(model: torch.nn.Module, scale: int, name: str) -> np.ndarray:
    out = Upscaler(model, scale=scale, name=name, device="cpu").upscale(_colour_image())
    assert out.shape == (HEIGHT * scale, WIDTH * scale, 3) and out.dtype == np.float32
    assert np.isfinite(out).all()
    return out


def _direct(model: torch.nn.Module) -> np.ndarray:
    """The model's own output on the colour image, as the Upscaler should reproduce it."""
    x = torch.from_numpy(_colour_image().transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        return prepare_for_inference(model)(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)


GENERATORS = [(spec.name, scale) for spec in list_specs(generators_only=True) for scale in spec.scales]


@pytest.mark.parametrize(("name", "scale"), GENERATORS, ids=[f"{n}-x{s}" for n, s in GENERATORS])
def test_every_registered_model_upscales_a_colour_image(name, scale):
    model = create(name, scale=scale)
    assert model_contract(model).channels == 3
    out = _assert_upscales_colour(model, scale, name)
    np.testing.assert_allclose(out, _direct(model), atol=1e-4)


@pytest.mark.parametrize(("name", "scale"), GENERATORS, ids=[f"{n}-x{s}" for n, s in GENERATORS])
def test_every_registered_model_built_for_luma_upscales_a_colour_image(name, scale):
    model = create(name, scale=scale, channels=1)
    assert model_contract(model).colour_space == "Y"
    _assert_upscales_colour(model, scale, name)


def test_every_architecture_declares_its_contract():
    # The channels a model takes are its own statement, not its first convolution's width.
    for spec in list_specs():
        scale = spec.scales[0] if spec.scales else None
        with torch.device("meta"):
            model = create(spec.name, scale=scale, channels=1) if scale else create(spec.name, channels=1)
        assert isinstance(getattr(model, "contract", None), Contract), spec.name
        assert model.contract.channels == 1, spec.name


def test_rrdbnet_declares_the_unshuffle_as_its_size_multiple():
    assert [create("rrdbnet", scale=s, blocks=1, features=8, growth=4).contract.size_multiple for s in (1, 2, 4, 8)] == [4, 2, 1, 1]


# --------------------------------------------------------------------------------------
# Every foreign layout at every scale its architecture supports

# layout: (registry name, small hyperparameters, authors' key function of (state, scale))
FOREIGN = {
    "RCAN": ("rcan", {"features": 16, "groups": 1, "blocks": 1, "reduction": 4}, lambda s, _: rcan_keys(s, groups=1, blocks=1)),
    "EDSR-PyTorch": ("edsr-baseline", {"features": 8, "blocks": 1}, lambda s, _: edsr_keys(s, blocks=1)),
    "ESRGAN (original)": (
        "rrdbnet", {"features": 8, "blocks": 1, "growth": 4}, lambda s, scale: esrgan_original_keys(s, blocks=1, stages=3 if scale == 8 else 2)
    ),
    "ESRGAN (RRDBNet_arch.py)": ("rrdbnet", {"features": 8, "blocks": 1, "growth": 4}, lambda s, _: esrgan_rrdbnet_arch_keys(s)),
    "BasicSR / Real-ESRGAN RRDBNet": ("rrdbnet", {"features": 8, "blocks": 1, "growth": 4}, lambda s, _: basicsr_rrdbnet_keys(s)),
    "Real-ESRGAN SRVGGNetCompact": ("srvggnet-compact", {"features": 8, "convs": 2}, lambda s, _: dict(s)),
    "IMDN": ("imdn", {"features": 16, "blocks": 2}, lambda s, _: imdn_keys(s)),
}
FOREIGN_CASES = [(layout, scale) for layout, (arch, _, _) in FOREIGN.items() for scale in get_spec(arch).scales]


def test_the_foreign_cases_cover_every_layout():
    assert set(FOREIGN) == set(LAYOUTS)


@pytest.mark.parametrize(("layout", "scale"), FOREIGN_CASES, ids=[f"{layout}-x{s}" for layout, s in FOREIGN_CASES])
def test_every_foreign_layout_upscales_a_colour_image(layout, scale, tmp_path):
    arch, hyperparameters, to_authors = FOREIGN[layout]
    source = randomise(create(arch, scale=scale, **hyperparameters))
    path = tmp_path / "authors.pth"
    torch.save(authors_state(source, lambda state: to_authors(state, scale)), path)
    loaded = load(path)
    assert (loaded.superres_metadata["source"], loaded.superres_arch, loaded.scale) == (layout, arch, scale)
    out = _assert_upscales_colour(loaded, scale, layout)
    np.testing.assert_allclose(out, _direct(source), atol=1e-5)


def _measured_radius(model: torch.nn.Module, channels: int) -> int:
    """How far an output pixel sees, measured: change one input pixel and find the output
    pixels that move, in input pixels from the changed one."""
    scale, size, centre = model.scale, 31, 15
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0))
    moved = x.clone()
    moved[..., centre, centre] += 0.5
    with torch.no_grad():
        delta = (model(moved) - model(x)).abs().amax(dim=(0, 1))
    rows, cols = torch.nonzero(delta > 0, as_tuple=True)
    return int(max((rows // scale - centre).abs().max(), (cols // scale - centre).abs().max()))


@pytest.mark.parametrize(
    "name,hyper",
    [("espcn", {}), ("espcn", {"channels": 1}), ("swiftrep", {"blocks": 3, "features": 8}), ("swiftrep", {"blocks": 10, "features": 8})],
)
@pytest.mark.parametrize("scale", [2, 3])
def test_a_declared_receptive_radius_is_the_measured_one(name, hyper, scale):
    from superres.models.contract import trace_receptive_radius

    torch.manual_seed(0)
    model = create(name, scale=scale, init="paper", **hyper) if name == "espcn" else create(name, scale=scale, **hyper)
    if name == "swiftrep":
        torch.nn.init.normal_(model.tail.weight, std=0.1)  # the near-zero start would hide the far taps
    contract = model_contract(model)
    assert contract.receptive_radius == _measured_radius(model.eval(), contract.channels)
    assert contract.receptive_radius <= trace_receptive_radius(model)  # the trace is a bound


def test_tile_and_geotiff_margins_cover_the_small_models_declared_reach():
    """The margins' comments name models whose reach they cover: checked, not restated."""
    from superres.inference.scientific import GEO_MARGIN
    from superres.options import DEFAULT_TILE_OVERLAP

    for name in ("espcn", "swiftrep"):
        radius = model_contract(create(name, scale=4)).receptive_radius
        assert radius + 2 <= GEO_MARGIN  # + bicubic chroma's reach
    assert model_contract(create("espcn", scale=4)).receptive_radius <= DEFAULT_TILE_OVERLAP // 3


def test_the_protocols_say_what_a_model_provides():
    from superres.models.contract import AdoptsState, Fusable, SuperresModel, fuse

    swiftrep, espcn = create("swiftrep", scale=2, blocks=2, features=8), create("espcn", scale=2)
    assert isinstance(swiftrep, SuperresModel) and isinstance(espcn, SuperresModel)
    assert isinstance(swiftrep, Fusable) and isinstance(swiftrep, AdoptsState)
    assert not isinstance(espcn, Fusable) and not isinstance(espcn, AdoptsState)
    assert model_contract(swiftrep).fusable and not model_contract(espcn).fusable
    assert model_contract(swiftrep).scale == 2
    assert fuse(swiftrep) and swiftrep.reparameterized and not fuse(swiftrep)  # once
    assert not fuse(espcn)

    class Own(torch.nn.Module):  # a user's module with no contract: duck-typed, as before
        reparameterized = False

        def reparameterize(self):
            self.reparameterized = True

    own = Own()
    assert model_contract(own).fusable and fuse(own) and own.reparameterized
