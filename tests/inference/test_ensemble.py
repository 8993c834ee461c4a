"""Self-ensemble: the eight transforms are inverted exactly, an orientation-blind model is
left unchanged, and it composes with tiling, alpha, the ONNX backend and the paper protocol."""

from __future__ import annotations

import numpy as np
import pytest

from superres.evaluate import format_table, predict_uint8, score_images, to_json
from superres.inference import Upscaler
from superres.inference.ensemble import DIHEDRAL, self_ensemble
from superres.models import load_for_scale


def _nearest_x2(batch: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3)


def test_an_orientation_blind_model_is_unchanged():
    x = np.random.default_rng(0).random((2, 3, 5, 7), dtype=np.float32)
    assert np.allclose(self_ensemble(_nearest_x2)(x), _nearest_x2(x), atol=1e-6)


def test_the_eight_outputs_are_turned_back_and_averaged():
    calls = []

    def shifted(batch):  # x2 nearest plus a ramp along the width it is given: not rotation-blind
        calls.append(batch.shape)
        out = _nearest_x2(batch)
        return out + np.linspace(0, 1, out.shape[3], dtype=np.float32)

    x = np.zeros((1, 1, 4, 6), np.float32)
    out = self_ensemble(shifted)(x)
    assert len(calls) == len(DIHEDRAL) == 8 and {(4, 6), (6, 4)} == {c[2:] for c in calls}
    # Ramps along +x, -x, +y, -y average to 0.5 everywhere.
    assert out.shape == (1, 1, 8, 12) and np.allclose(out, 0.5, atol=1e-6)


@pytest.fixture(scope="module")
def espcn():
    return load_for_scale("espcn", 2)  # trained: an untrained one starts orientation-blind


def test_upscaler_ensemble_with_tiles_matches_whole_and_keeps_alpha(espcn):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (40, 36, 4), dtype=np.uint8)
    whole = Upscaler(espcn, scale=2, name="espcn", device="cpu", tile=0, ensemble=True).upscale(rgba)
    tiled = Upscaler(espcn, scale=2, name="espcn", device="cpu", tile=32, tile_overlap=24, ensemble=True).upscale(rgba)
    plain = Upscaler(espcn, scale=2, name="espcn", device="cpu", tile=0).upscale(rgba)
    assert whole.shape == (80, 72, 4)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    assert np.array_equal(whole[..., 3], plain[..., 3])  # alpha is bicubic, apart from the model
    assert not np.array_equal(whole[..., :3], plain[..., :3])


def test_onnx_backend_ensembles_like_torch(espcn):
    rgb = np.random.default_rng(2).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    torch_out = Upscaler(espcn, scale=2, name="espcn", device="cpu", ensemble=True).upscale(rgb)
    onnx_out = Upscaler(espcn, scale=2, name="espcn", device="cpu", backend="onnx", ensemble=True).upscale(rgb)
    assert np.abs(torch_out.astype(int) - onnx_out.astype(int)).max() <= 1


def test_the_paper_protocol_labels_ensemble_scores_plus(espcn):
    from superres.data.datasets import BenchmarkImage

    hr = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    item = BenchmarkImage(name="noise", hr=hr, lr=hr[::2, ::2].copy())
    assert predict_uint8(espcn, item.lr, ensemble=True).shape == (16, 16, 3)
    score = score_images(espcn, [item], scale=2, dataset="tiny", ensemble=True)
    assert score.ensemble and "x2+" in format_table([score])
    plain = score_images(espcn, [item], scale=2, dataset="tiny")
    assert "x2+" not in format_table([plain])
    assert '"ensemble": true' in to_json([score]) and '"ensemble"' not in to_json([plain])
