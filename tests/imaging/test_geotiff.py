"""GeoTIFF in and out (superres.imaging.geotiff, through superres.inference.scientific), on
files rasterio writes here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio", reason="GeoTIFF needs the geo extra: pip install 'superres[geo]'")

import superres  # noqa: E402
from scientific_files import write_geotiff  # noqa: E402
from superres.imaging.geotiff import GeoTiffError, is_geotiff  # noqa: E402
from superres.inference.scientific import band_groups, upscale_geotiff_file  # noqa: E402


def test_geometry_crs_bounds_and_nodata_survive(espcn, tmp_path):
    source = write_geotiff(tmp_path / "scene.tif")
    upscale_geotiff_file(espcn, source, tmp_path / "scene_x2.tif")
    with rasterio.open(source) as a, rasterio.open(tmp_path / "scene_x2.tif") as b:
        assert (b.width, b.height, b.count, b.dtypes) == (2 * a.width, 2 * a.height, 3, a.dtypes)
        assert b.crs == a.crs
        assert b.bounds == a.bounds
        assert (b.transform.a, b.transform.e) == (5.0, -5.0) and (b.transform.c, b.transform.f) == (a.transform.c, a.transform.f)
        assert b.nodata == 0
        assert b.tags()["ACQUISITION"] == "2026-06-01" and "espcn" in b.tags()["TIFFTAG_SOFTWARE"]
        assert b.descriptions[0] == "first band"
        assert b.profile["tiled"] and b.profile["compress"] == "deflate"
        data, before = b.read(), a.read()
        # The nodata square is nodata again (nearest-upscaled); the rest is data in range.
        assert np.all(data[:, :32, :24] == 0)
        valid = data[:, 40:, 30:]
        assert valid.min() > 0
        assert valid.max() <= np.iinfo(np.uint16).max
        # Each band is upscaled from its own input: its block means follow the input's.
        small = data.reshape(3, 96, 2, 80, 2).mean(axis=(2, 4))
        assert np.abs(small[:, 20:, 16:] - before[:, 20:, 16:]).mean() < 0.01 * 65535


def test_windows_with_margins_match_one_window(bicubic, tmp_path):
    source = write_geotiff(tmp_path / "scene.tif", height=150, width=130, count=1, hole=False)
    upscale_geotiff_file(bicubic, source, tmp_path / "whole.tif", window=1024)
    upscale_geotiff_file(bicubic, source, tmp_path / "windows.tif", window=48, margin=16)
    with rasterio.open(tmp_path / "whole.tif") as a, rasterio.open(tmp_path / "windows.tif") as b:
        assert np.abs(a.read().astype(int) - b.read().astype(int)).max() <= 1


def test_float_bands_keep_their_values_and_nodata(bicubic, tmp_path):
    source = write_geotiff(tmp_path / "reflectance.tif", count=2, dtype="float32", nodata=-9999.0)
    upscale_geotiff_file(bicubic, source, tmp_path / "reflectance_x2.tif")
    with rasterio.open(source) as a, rasterio.open(tmp_path / "reflectance_x2.tif") as b:
        before, after = a.read(masked=True), b.read(masked=True)
        assert b.dtypes == ("float32", "float32") and b.nodata == -9999.0
        assert np.all(after.mask[:, :32, :24]) and not after.mask[:, 40:, 30:].any()
        # Scaled by the band's own range: results stay within it (no -9999 bleeding in).
        assert after.min() >= before.min() - 1e-6 and after.max() <= before.max() + 1e-6


def test_rgb_bands_go_together_and_others_alone():
    assert band_groups(4, 3, (1, 2, 3)) == [(1, 2, 3), (4,)]
    assert band_groups(3, 1, None) == [(1,), (2,), (3,)]
    assert band_groups(4, 4, None) == [(1, 2, 3, 4)]  # a model trained for the band count
    assert band_groups(1, 3, None) == [(1,)]


def test_an_rgb_uint8_scene_and_a_cloud_optimised_output(espcn, tmp_path):
    source = write_geotiff(tmp_path / "rgb.tif", height=300, width=270, count=4, dtype="uint8", nodata=None, rgb=True)
    upscale_geotiff_file(espcn, source, tmp_path / "rgb_x2.tif", cog=True)
    with rasterio.open(tmp_path / "rgb_x2.tif") as b:
        assert b.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert b.overviews(1)  # 540 x 600 px: GDAL adds overviews above its 512 px blocks
        assert [c.name for c in b.colorinterp[:3]] == ["red", "green", "blue"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_a_damaged_geotiff_is_one_line_and_leaves_nothing(bicubic, tmp_path):
    source = write_geotiff(tmp_path / "scene.tif", height=700, width=700, count=1, tiled=True, compress="deflate")
    data = bytearray(source.read_bytes())
    data[4096 : len(data) // 2] = b"\xa5" * (len(data) // 2 - 4096)  # tags intact, compressed tiles overwritten
    source.write_bytes(bytes(data))
    assert is_geotiff(source)
    with pytest.raises(GeoTiffError) as err:
        upscale_geotiff_file(bicubic, source, tmp_path / "out.tif")
    assert "scene.tif" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.tif").exists() and not list(tmp_path.glob(".*"))


def test_a_plain_tiff_is_not_a_geotiff(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((8, 8), np.uint16))
    assert not is_geotiff(tmp_path / "plain.tif")
    assert is_geotiff(write_geotiff(tmp_path / "geo.tif"))


# The child upscales a scene in 128 px windows with GDAL's cache at 8 MB; its peak memory
# may grow by less than the result's own samples (2048 x 2048 x 3 uint16: 24 MiB; 48 MiB
# as float32), which it would exceed if the result were ever held whole.
_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import superres
    from superres.inference.scientific import upscale_geotiff_file

    source, small, output = sys.argv[1:4]
    up = superres.load("bicubic", 2, threads=1)
    upscale_geotiff_file(up, small, output + ".warm.tif", window=128)  # imports and first allocations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    upscale_geotiff_file(up, source, output, window=128)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_mb": before / 1024, "peak_mb": peak / 1024}))
    """
)


def test_a_large_scene_is_upscaled_in_bounded_memory(tmp_path):
    import os

    source = write_geotiff(tmp_path / "big.tif", height=1024, width=1024, count=3, tiled=True)
    small = write_geotiff(tmp_path / "small.tif", height=200, width=200, count=3)
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(source), str(small), str(tmp_path / "big_x2.tif")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "GDAL_CACHEMAX": "8"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    memory = json.loads(result.stdout.strip().splitlines()[-1])
    growth = memory["peak_mb"] - memory["before_mb"]
    assert growth < 24, memory
    with rasterio.open(source) as a, rasterio.open(tmp_path / "big_x2.tif") as b:
        assert (b.width, b.height) == (2048, 2048) and b.bounds == a.bounds


def test_nan_and_inf_without_nodata_are_kept_not_invented(bicubic, tmp_path):
    """Issue 32, item 6: a float32 GeoTIFF with NaN and +-inf and no nodata value came back with
    every sample finite and plausible. They are masked out of the model's input and written
    back as they were, and the summary says so; the data around them stays in range."""
    source = write_geotiff(tmp_path / "gaps.tif", count=2, dtype="float32", nodata=None, hole=False)
    with rasterio.open(source, "r+") as ds:
        data = ds.read()
        data[0, 10, 10], data[1, 10, 10] = np.nan, 0.3  # band 1 only
        data[:, 40:44, 50:52] = np.inf
        data[1, 70, 5] = -np.inf
        ds.write(data)
    summary = upscale_geotiff_file(bicubic, source, tmp_path / "gaps_x2.tif")
    assert "NaN or infinite samples kept as they were" in summary and summary.endswith(f", {1 + 2 * 4 * 2 + 1} NaN or infinite samples kept as they were")
    with rasterio.open(tmp_path / "gaps_x2.tif") as out:
        after = out.read()
        assert out.nodata is None
    assert np.isnan(after[0, 20:22, 20:22]).all() and np.isfinite(after[1, 20:22, 20:22]).all()
    assert np.isposinf(after[:, 80:88, 100:104]).all()
    assert np.isneginf(after[1, 140:142, 10:12]).all() and np.isfinite(after[0, 140:142, 10:12]).all()
    # Nothing else became non-finite, and the finite data stays within the scene's finite range.
    assert np.count_nonzero(~np.isfinite(after)) == 4 * (1 + 2 * 4 * 2 + 1)
    finite = data[np.isfinite(data)]
    assert after[np.isfinite(after)].min() >= finite.min() - 1e-6 and after[np.isfinite(after)].max() <= finite.max() + 1e-6


def test_a_huge_sparse_scene_prints_its_output_size_and_time_before_the_work(bicubic, tmp_path):
    """Issue 32, item 6: a 100000x100000 sparse GeoTIFF started with no estimate. The output's
    size comes before any window, the time after the first; stopped then, it leaves no file."""
    from rasterio.transform import from_origin

    source = tmp_path / "sparse.tif"
    with rasterio.open(source, "w", driver="GTiff", width=100_000, height=100_000, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000.0, 4600000.0, 10.0, 10.0), tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", sparse_ok=True) as ds:
        ds.write(np.full((1, 512, 512), 7, np.uint8), window=rasterio.windows.Window(0, 0, 512, 512))
    lines: list[str] = []

    class Stop(Exception):
        pass

    def stop_after_the_first(done, total):
        raise Stop

    with pytest.raises(Stop):
        upscale_geotiff_file(bicubic, source, tmp_path / "sparse_x2.tif", progress=stop_after_the_first, log=lines.append)
    assert len(lines) == 2, lines
    assert lines[0] == "'sparse.tif': 100000x100000 -> 200000x200000, 1 x uint8: 40 GB uncompressed to write (compressed, less), in 38416 windows"
    assert lines[1].startswith("'sparse.tif': about ") and "estimated" in lines[1] and "first of 38416 windows" in lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparse.tif"]
