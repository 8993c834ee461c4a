"""SwiftRep growth: a deeper model started from a shallower checkpoint."""

import torch

from superres.models import create, save


def test_a_deeper_swiftrep_starts_as_the_shallower_one(tmp_path):
    from superres.training.module import init_from_checkpoint

    torch.manual_seed(0)
    shallow = create("swiftrep", scale=2, blocks=3)
    for act in shallow.acts:  # trained slopes are not the default 0.25
        act.weight.data.uniform_(0.1, 0.5)
    path = save(shallow, tmp_path / "s.safetensors", arch="swiftrep", scale=2, hyperparameters={"blocks": 3})
    deep = create("swiftrep", scale=2, blocks=5)
    left = init_from_checkpoint(deep, path)
    assert left and all(k.startswith(("body.3.", "body.4.", "acts.3.", "acts.4.")) for k in left)
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), shallow(x), atol=1e-6, rtol=0)
        # and still after fusing, as it ships
        torch.testing.assert_close(deep.reparameterize()(x), shallow(x), atol=1e-5, rtol=0)
    # Its added blocks learn: the zero convolutions get gradients.
    grown = create("swiftrep", scale=2, blocks=5)
    init_from_checkpoint(grown, path)
    grown(x).square().mean().backward()
    assert grown.body[4].conv3.weight.grad.abs().sum() > 0
