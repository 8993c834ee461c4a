"""``superres upscale`` routes DICOM files and GeoTIFFs by their type, and a DICOM series comes
back as a series; ``superres eval`` scores 16-bit images in their own range."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="DICOM needs the medical extra: pip install 'superres[medical]'")
rasterio = pytest.importorskip("rasterio", reason="GeoTIFF needs the geo extra: pip install 'superres[geo]'")

from scientific_files import textured, write_dicom, write_geotiff  # noqa: E402
from superres.cli import main  # noqa: E402
from superres.imaging.io import ImageData, read_image, write_image  # noqa: E402


def test_a_series_folder_comes_back_as_one_new_series(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    series = tmp_path / "series"
    series.mkdir()
    for i in range(3):  # named as scanners name them: no extension
        write_dicom(series / f"IM{i:04d}", series_uid="1.2.826.0.1.3680043.8.498.77")
    (series / "notes.txt").write_text("not an image")
    write_geotiff(tmp_path / "scene.tif")
    # The README's command, as written.
    code = main(["upscale", "series/", "scene.tif", "-m", "espcn", "-s", "2", "--threads", "1"])
    outputs = sorted(series.glob("*.dcm"))
    assert [p.name for p in outputs] == ["IM0000_x2.dcm", "IM0001_x2.dcm", "IM0002_x2.dcm"]
    with rasterio.open(tmp_path / "scene_x2.tif") as scene:
        assert scene.crs is not None and (scene.width, scene.height) == (160, 192)
    datasets = [pydicom.dcmread(p) for p in outputs]
    assert len({str(d.SeriesInstanceUID) for d in datasets}) == 1
    assert datasets[0].SeriesInstanceUID != "1.2.826.0.1.3680043.8.498.77"
    assert len({str(d.SOPInstanceUID) for d in datasets}) == 3
    assert code == 1 and "notes.txt" in capsys.readouterr().err  # the text file is reported as skipped


def test_geotiff_and_plain_tiff_take_their_own_paths(tmp_path):
    write_geotiff(tmp_path / "scene.tif")
    write_image(tmp_path / "plain.tif", ImageData(pixels=(textured(40, 30)[..., None] * 65535).astype(np.uint16)))
    code = main(["upscale", str(tmp_path / "scene.tif"), str(tmp_path / "plain.tif"), "-m", "bicubic", "-s", "2", "--threads", "1"])
    assert code == 0
    with rasterio.open(tmp_path / "scene_x2.tif") as b:
        assert b.crs is not None and (b.width, b.height) == (160, 192)
    plain = read_image(tmp_path / "plain_x2.tif")
    assert plain.pixels.shape == (80, 60, 1) and plain.pixels.dtype == np.uint16


def test_a_corrupt_dicom_is_one_line_and_a_non_zero_exit(tmp_path):
    (tmp_path / "bad.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"1.2" * 5)
    done = subprocess.run(
        [sys.executable, "-m", "superres", "upscale", str(tmp_path / "bad.dcm"), "-m", "bicubic", "-s", "2"],
        capture_output=True, text=True, timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert lines[0].startswith("superres: failed 'bad.dcm'") or "bad.dcm" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("bad_x2*")) and not list(tmp_path.glob(".*"))


def test_eval_scores_16_bit_images_in_their_own_range(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):  # a 12-bit range in 16-bit words, as a CT or MR slice stores it
        write_image(folder / f"s{i}.png", ImageData(pixels=np.rint(textured(64, 64, seed=i) * 4095).astype(np.uint16)[..., None]))
    main(["eval", "-m", "bicubic", "--data", str(folder), "-s", "2", "--format", "json"])
    sixteen = capsys.readouterr().out
    main(["eval", "-m", "bicubic", "--data", str(folder), "-s", "2", "--format", "json", "--lr-8bit"])
    eight = capsys.readouterr().out
    import json

    full, reduced = json.loads(sixteen)[0], json.loads(eight)[0]
    assert reduced["dataset"] == "scans-8bit"
    # 8 bits leave 17 levels of a 12-bit range (an RMS error of 74 of 65535, 58.9 dB alone),
    # which adds to bicubic's own error; PSNR is against the 16-bit peak in both.
    assert full["dataset"] == "scans" and full["psnr"] > reduced["psnr"] + 1
