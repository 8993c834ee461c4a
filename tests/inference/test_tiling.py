"""The tiling engine: tiles cover the image, blending weights are a partition of unity that
ignores the cut edges, and a real convolutional model gives the same output tiled as whole."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from superres.inference.tiling import axis_weights, choose_tiling, plan_axis, upscale_tiled
from superres.inference.upscaler import Upscaler
from superres.models import create

COMBOS = list(itertools.product([1, 17, 64, 65, 100, 257], [16, 32, 48, 64], [0, 4, 8, 16, 24]))


@pytest.mark.parametrize("length, tile, overlap", COMBOS)
def test_plan_axis_covers_with_equal_overlapping_tiles(length, tile, overlap):
    spans = plan_axis(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert len({stop - start for start, stop in spans}) == 1  # equal tiles, so they batch
    assert all(stop - start == min(tile, length) for start, stop in spans)
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        assert stop - start >= min(overlap, tile // 2)


@pytest.mark.parametrize("length, tile, overlap", [c for c in COMBOS if c[2] > 0])
@pytest.mark.parametrize("scale", [1, 3])
def test_axis_weights_sum_to_one_and_ignore_cut_edges(length, tile, overlap, scale):
    spans = plan_axis(length, tile, overlap)
    weights = axis_weights(spans, length, scale, overlap)
    total = np.zeros(length * scale)
    for (start, stop), w in zip(spans, weights):
        total[start * scale : stop * scale] += w
        # Nothing is taken from within overlap/3 of a cut (inner) edge.
        edge = int(min(overlap, tile // 2) * scale / 3)
        if start > 0:
            assert np.all(w[:edge] == 0)
        if stop < length:
            assert np.all(w[len(w) - edge :] == 0)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def _randomised_swiftrep(scale: int) -> torch.nn.Module:
    # A fresh SwiftRep is nearly nearest-neighbour upscaling (its tail starts near zero); a
    # larger tail makes the whole 12-layer receptive field matter.
    torch.manual_seed(0)
    model = create("swiftrep", scale=scale)
    torch.nn.init.normal_(model.tail.weight, std=0.02)
    return model


@pytest.mark.parametrize(
    "name, scale, overlap",
    [("swiftrep", 2, 24), ("espcn", 3, 12), ("fsrcnn", 2, 16)],  # overlaps cover the receptive fields (radius 12, 4, ~7)
)
def test_tiled_matches_whole_image(name, scale, overlap):
    model = _randomised_swiftrep(scale) if name == "swiftrep" else create(name, scale=scale)
    image = np.random.default_rng(1).random((70, 90, 3)).astype(np.float32)
    whole = Upscaler(model, scale=scale, name=name, tile=0).upscale(image)
    tiled_upscaler = Upscaler(model, scale=scale, name=name, tile=48, tile_overlap=overlap, batch_size=3)
    assert tiled_upscaler.tiling_for(70, 90) == (48, 3)
    tiled = tiled_upscaler.upscale(image)
    assert 0.05 < whole.std()  # not a flat or saturated output that would hide seams
    assert np.abs(tiled - whole).max() <= 1 / 255


def test_engine_sends_only_tiles_and_batches_them():
    seen = []

    def run(batch):
        seen.append(batch.shape)
        return batch.repeat(2, axis=2).repeat(2, axis=3)

    image = np.random.default_rng(0).random((3, 100, 130)).astype(np.float32)
    calls = []
    out = upscale_tiled(run, image, scale=2, tile=40, overlap=8, batch_size=4, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(out, image.repeat(2, axis=1).repeat(2, axis=2), atol=1e-6)
    assert all(shape[2:] == (40, 40) and shape[0] <= 4 for shape in seen)  # never the whole image at once
    assert calls[-1][0] == calls[-1][1] == sum(shape[0] for shape in seen)


def test_engine_progress_bar(capsys):
    image = np.zeros((1, 80, 80), dtype=np.float32)
    upscale_tiled(lambda b: b.repeat(2, axis=2).repeat(2, axis=3), image, scale=2, tile=32, overlap=8, progress=True)
    assert "tile" in capsys.readouterr().err


def test_engine_rejects_a_model_of_the_wrong_scale():
    with pytest.raises(ValueError, match="not x2"):
        upscale_tiled(lambda b: b, np.zeros((3, 20, 20), np.float32), scale=2, tile=0, overlap=8)


def test_choose_tiling_from_memory():
    # Fits: the whole image, several at once for video frames.
    assert choose_tiling(100, 100, bytes_per_pixel=1000, available=10**9, max_tile=1024) == (0, 8)
    # Too big for half the memory: square tiles, a multiple of 16, that fit.
    tile, batch = choose_tiling(4000, 3000, bytes_per_pixel=1000, available=2 * 10**9, max_tile=4096)
    assert tile % 16 == 0 and tile * tile * 1000 * batch <= 10**9 and batch == 1
    # Capped on the CPU even with plenty of memory; a given batch size shrinks the tile.
    assert choose_tiling(4000, 3000, bytes_per_pixel=10, available=10**12, max_tile=1024)[0] == 1024
    assert choose_tiling(4000, 3000, bytes_per_pixel=1000, available=2 * 10**9, batch_size=4)[0] < tile
    # Never below 64 pixels, however little memory there is.
    assert choose_tiling(4000, 3000, bytes_per_pixel=1000, available=10**6)[0] == 64
