import time

import numpy as np
import pytest
import torch

from superres.imaging.resize import imresize, imresize_torch, output_size, resize_weights


def test_weights_rows_sum_to_one_and_mirror_edges():
    for n_in, n_out, s in [(12, 3, 0.25), (10, 20, 2.0), (7, 21, 3.0), (9, 3, 1 / 3)]:
        w = resize_weights(n_in, n_out, s)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        assert w.shape == (n_out, n_in)


def test_constant_image_is_preserved():
    image = np.full((17, 13, 3), 77, np.uint8)
    for s in (0.25, 0.5, 1 / 3, 2, 3, 4):
        out = imresize(image, s)
        assert out.dtype == np.uint8
        assert (out == 77).all()


def test_output_size_is_ceil_of_scaled_input_or_explicit():
    assert imresize(np.zeros((10, 7)), 0.5).shape == (5, 4)
    assert imresize(np.zeros((10, 7, 3)), 3).shape == (30, 21, 3)
    assert imresize(np.zeros((10, 7)), size=(4, 9)).shape == (4, 9)
    assert output_size((10, 7), 0.3) == ((3, 3), (0.3, 0.3))
    with pytest.raises(ValueError):
        output_size((10, 7))


def test_upscaling_matches_known_matlab_values():
    # imresize([0 1 0 0], [1 8], 'bicubic'), worked by hand: output pixel x samples the
    # 0-based position (x - 1) / 2 - 0.25 = -0.25, 0.25, ..., 3.25; the value there is
    # cubic(p - 1) plus cubic(p + 2) from the mirrored copy of the 1 at index -2.
    row = np.array([[0.0, 1.0, 0.0, 0.0]])
    out = imresize(row, size=(1, 8))
    expected = np.array([[-0.09375, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375, 0.0]])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_rounds_halves_away_from_zero_like_matlab():
    from superres.imaging.resize import _restore_dtype

    # MATLAB's uint8 conversion: 0.5 -> 1, 2.5 -> 3 (np.round would give 0 and 2).
    assert _restore_dtype(np.array([0.5, 1.5, 2.5, 254.5, 300.0, -3.0]), np.uint8).tolist() == [1, 2, 3, 255, 255, 0]
    t = imresize_torch(torch.tensor([[[[2.5, 0.5]]]]) / 255, size=(1, 2), round_uint8=True)
    assert (t * 255).round().tolist() == [[[[3.0, 1.0]]]]


def test_downscaling_antialiases():
    # A checkerboard has no low-frequency content: antialiased downscaling flattens it to grey.
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = imresize(board, 0.25)
    assert abs(float(small[2:-2, 2:-2].mean()) - 127.5) < 1.0
    assert small[2:-2, 2:-2].std() < 1.0


def test_integer_types_and_float():
    rng = np.random.default_rng(0)
    img16 = rng.integers(0, 65536, (20, 18, 3), dtype=np.uint16)
    out16 = imresize(img16, 0.5)
    assert out16.dtype == np.uint16
    imgf = rng.random((20, 18)).astype(np.float32)
    outf = imresize(imgf, 2)
    assert outf.dtype == np.float32
    np.testing.assert_allclose(outf, imresize(imgf.astype(np.float64), 2), atol=1e-6)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.37, 1.7])
def test_torch_matches_numpy_within_one_level(scale):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (4, 3, 37, 29), dtype=np.uint8)
    expected = np.stack([imresize(im.transpose(1, 2, 0), scale).transpose(2, 0, 1) for im in image])
    got = imresize_torch(torch.from_numpy(image), scale).numpy()
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    # The float path with round_uint8 gives the same 8-bit grid as uint8 input.
    as_float = imresize_torch(torch.from_numpy(image).float() / 255, scale, round_uint8=True)
    assert np.abs(np.round(as_float.numpy() * 255).astype(int) - expected.astype(int)).max() <= 1


def test_torch_float64_is_exact():
    rng = np.random.default_rng(2)
    image = rng.random((2, 1, 16, 11))
    got = imresize_torch(torch.from_numpy(image), 0.5).numpy()
    expected = np.stack([imresize(im[0], 0.5)[None] for im in image])
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_torch_is_much_faster_than_numpy_on_training_batches():
    """The benchmark (benchmarks/imresize.py) prints the ratio; here a loose floor only."""
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (16, 3, 192, 192), dtype=np.uint8)
    t0 = time.perf_counter()
    for im in batch:
        imresize(im.transpose(1, 2, 0), 0.25)
    numpy_s = time.perf_counter() - t0
    tb = torch.from_numpy(batch).float() / 255
    imresize_torch(tb, 0.25)
    t0 = time.perf_counter()
    imresize_torch(tb, 0.25, round_uint8=True)
    torch_s = time.perf_counter() - t0
    assert numpy_s / torch_s > 2
