import numpy as np
import pytest
import torch
from PIL import Image

from superres.data import DataError, Degradations, HRPatchDataset, ImageStore, PairedPatchDataset, PatchStreamSampler, make_lr_batch
from superres.imaging.resize import imresize, imresize_torch


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    sub = tmp_path / "nested"
    sub.mkdir()
    for i, (h, w) in enumerate([(120, 100), (90, 130), (64, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save((sub if i else tmp_path) / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (70, 80), dtype=np.uint8)).save(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "readme.txt").write_text("not an image extension, ignored")
    return tmp_path


@pytest.mark.parametrize("cache", ["memory", "subimages", "none"])
def test_store_reads_tree_skips_bad_files_and_serves_identical_patches(folder, tmp_path, cache):
    store = ImageStore([folder], cache=cache, cache_dir=tmp_path / "cache", tile=48, min_size=32)
    assert any("broken.png" in s for s in store.skipped)
    dataset = HRPatchDataset(store, patch=32, seed=3)
    a, b = dataset[5], dataset[5]
    assert a.shape == (3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)  # sample i is a pure function of (seed, i)
    assert not torch.equal(dataset[5], dataset[6])
    if cache == "memory":
        assert len(store) == 4  # 3 RGB + 1 grayscale (repeated to RGB)
        assert store.image(3).shape[2] == 3


def test_subimage_cache_is_reused(folder, tmp_path):
    ImageStore([folder], cache="subimages", cache_dir=tmp_path / "c", tile=48)
    files = sorted((tmp_path / "c").rglob("*.npy"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    ImageStore([folder], cache="subimages", cache_dir=tmp_path / "c", tile=48)
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "c").rglob("*.npy"))] == mtimes


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no images"):
        ImageStore([tmp_path])
    with pytest.raises(DataError, match="no such folder"):
        ImageStore([tmp_path / "nope"])


def test_sampler_shards_the_stream_between_ranks_and_resumes():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    r0 = take(PatchStreamSampler(batch_size=2, rank=0, world=2), 4)
    r1 = take(PatchStreamSampler(batch_size=2, rank=1, world=2), 4)
    assert r0 == [0, 1, 4, 5] and r1 == [2, 3, 6, 7]
    assert take(PatchStreamSampler(batch_size=2, start_batch=lambda: 1, rank=0, world=2), 2) == [4, 5]


def test_lr_batch_is_the_protocols_lr():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.integers(0, 256, (2, 3, 48, 48), dtype=np.uint8))
    lr, hr_f = make_lr_batch(hr, 4)
    expected = np.stack([imresize(im.numpy().transpose(1, 2, 0), 0.25).transpose(2, 0, 1) for im in hr])
    assert np.abs(np.round(lr.numpy() * 255) - expected).max() <= 1
    assert torch.allclose(hr_f, hr.float() / 255)
    with pytest.raises(ValueError, match="multiple of scale"):
        make_lr_batch(hr[..., :47], 4)


def test_degradations_are_applied_in_order_and_reproducibly():
    hr = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    hr[:, :, :, 16:] = 0
    d = Degradations(blur_sigma=(1.0, 2.0), noise_sigma=(5.0, 5.0), jpeg_quality=(30, 30))
    a, _ = make_lr_batch(hr, 2, d, torch.Generator().manual_seed(0))
    b, _ = make_lr_batch(hr, 2, d, torch.Generator().manual_seed(0))
    clean, _ = make_lr_batch(hr, 2)
    assert torch.equal(a, b)
    assert (a - clean).abs().mean() > 0.005  # noise and JPEG changed it
    assert a.shape == clean.shape == (2, 3, 16, 16)


def test_paired_dataset_crops_aligned_patches(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "hr").mkdir()
    (tmp_path / "lr").mkdir()
    hr = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    Image.fromarray(hr).save(tmp_path / "hr" / "a.png")
    Image.fromarray(imresize(hr, 0.5)).save(tmp_path / "lr" / "a.png")
    ds = PairedPatchDataset(ImageStore([tmp_path / "lr"]), ImageStore([tmp_path / "hr"]), scale=2, patch=32, augment=False)
    lr, hr_patch = ds[0]
    assert lr.shape == (3, 16, 16) and hr_patch.shape == (3, 32, 32)
    down = imresize_torch(hr_patch[None], 0.5)[0]
    assert (down.int() - lr.int()).abs().float().mean() < 3  # the same place, up to patch-edge effects


@pytest.fixture
def big_flat_small_textured(tmp_path):
    """A large flat image (grey with a faint ramp) and a small textured one, 16 times less area."""
    rng = np.random.default_rng(4)
    ramp = np.linspace(100, 110, 256, dtype=np.float32)
    flat = np.repeat(np.broadcast_to(ramp, (256, 256))[..., None], 3, axis=2).round().astype(np.uint8)
    Image.fromarray(flat).save(tmp_path / "a_flat.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "b_textured.png")
    return ImageStore([tmp_path], min_size=32)


def test_sampling_by_image_gives_each_image_an_equal_share(big_flat_small_textured):
    store = big_flat_small_textured
    textured = [store.pick(u, by="image") == 1 for u in np.linspace(0, 1, 1000, endpoint=False)]
    by_area = [store.pick(u) == 1 for u in np.linspace(0, 1, 1000, endpoint=False)]
    assert np.mean(textured) == pytest.approx(0.5, abs=0.01)
    assert np.mean(by_area) == pytest.approx(1 / 17, abs=0.01)  # 64^2 of 256^2 + 64^2


def test_min_gradient_redraws_flat_patches_reproducibly(big_flat_small_textured):
    from superres.data.datasets import mean_gradient

    store = big_flat_small_textured
    plain = HRPatchDataset(store, patch=32, seed=0)
    picky = HRPatchDataset(store, patch=32, seed=0, min_gradient=2.0)
    gradients = lambda ds: np.array([mean_gradient(ds[i].permute(1, 2, 0).numpy()) for i in range(200)])  # noqa: E731
    both = HRPatchDataset(store, patch=32, seed=0, min_gradient=2.0, sampling="image")
    assert (gradients(plain) >= 2).mean() < 0.15  # by area, 1 patch in 17 is textured
    # The first draw and up to 10 redraws: 1 - (16/17)^11 = 49% textured by area, all by image.
    assert 0.35 < (gradients(picky) >= 2).mean() < 0.65
    assert (gradients(both) >= 2).all()
    assert torch.equal(picky[7], picky[7])
    with pytest.raises(ValueError, match="sampling"):
        HRPatchDataset(store, patch=32, sampling="random")
