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


def test_a_training_swiftrep_started_from_a_fused_file_is_that_model(tmp_path):
    from superres.training.module import init_from_checkpoint

    torch.manual_seed(0)
    trained = create("swiftrep", scale=3, blocks=4)
    for p in trained.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)  # every branch carries something, as after training
    fused = create("swiftrep", scale=3, blocks=4)
    fused.load_state_dict(trained.state_dict())
    fused.reparameterize()
    path = save(fused, tmp_path / "f.safetensors", arch="swiftrep", scale=3, hyperparameters={"blocks": 4, "reparameterized": True})
    start = create("swiftrep", scale=3, blocks=4)
    assert init_from_checkpoint(start, path) == []  # every tensor of the training form is set
    assert not start.reparameterized
    x = torch.rand(1, 3, 17, 21)
    with torch.no_grad():
        torch.testing.assert_close(start(x), fused(x), atol=1e-5, rtol=0)
    assert all(block.conv1.weight.abs().sum() == 0 for block in start.body)


def test_an_init_from_that_does_not_fit_is_refused_by_name_and_count(tmp_path):
    import pytest

    from superres.models import CheckpointError
    from superres.training.module import init_from_checkpoint

    deep = create("swiftrep", scale=2, blocks=6)
    path = save(deep, tmp_path / "d.safetensors", arch="swiftrep", scale=2, hyperparameters={"blocks": 6})
    shallow = create("swiftrep", scale=2, blocks=2)  # the config forgot blocks: 6
    with pytest.raises(CheckpointError, match=r"20 of its 34 tensors fit nowhere in the model \(acts\.2\.weight, .*init_partial"):
        init_from_checkpoint(shallow, path)
    assert init_from_checkpoint(shallow, path, partial=True) == []  # asked for: the first two blocks

    tiny = create("swiftrep", scale=2, blocks=1)
    path = save(tiny, tmp_path / "t.safetensors", arch="swiftrep", scale=2, hyperparameters={"blocks": 1})
    big = create("swiftrep", scale=2, blocks=8)
    with pytest.raises(CheckpointError, match=r"35 of the model's 44 tensors \(8\d% of its values\) would keep their initialisation"):
        init_from_checkpoint(big, path)
