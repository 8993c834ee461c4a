"""A JPEG's quality from its quantisation tables, against files Pillow wrote at known qualities."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.imaging.io import ImageData, read_image, write_image
from superres.imaging.jpeg_quality import IJG_LUMA_TABLE, ijg_table, jpeg_quality, quality_from_table


def _jpeg(quality: int, mode: str = "RGB") -> bytes:
    pixels = np.random.default_rng(quality).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [5, 10, 25, 40, 49, 50, 51, 60, 75, 85, 90, 95, 100])
def test_the_quality_pillow_wrote_is_read_back_from_bytes_pillow_and_a_path(quality, tmp_path):
    data = _jpeg(quality)
    assert jpeg_quality(data).quality == quality and jpeg_quality(data).exact
    assert jpeg_quality(Image.open(io.BytesIO(data))).quality == quality  # a JpegImageFile, header only
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    assert jpeg_quality(path).quality == quality
    assert read_image(path).jpeg_quality == quality  # what every reader of photos carries along


def test_grey_jpegs_have_only_the_luma_table():
    assert jpeg_quality(_jpeg(70, "L")).quality == 70


def test_the_standard_table_is_quality_50_and_100_is_all_ones():
    assert np.array_equal(ijg_table(50), IJG_LUMA_TABLE)
    assert np.array_equal(ijg_table(100), np.ones(64))
    assert ijg_table(1).max() == 255  # baseline tables clip at 255


def test_a_table_no_ijg_encoder_wrote_reads_as_the_nearest_quality():
    # A camera's own table: the IJG table of 70, every entry one step coarser.
    found = quality_from_table(ijg_table(70) + 1)
    assert not found.exact and found.error > 0
    assert 66 <= found.quality <= 70


def test_images_that_are_not_jpegs_have_no_quality(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    assert jpeg_quality(buffer.getvalue()) is None
    assert jpeg_quality(b"") is None
    assert jpeg_quality(Image.open(io.BytesIO(_jpeg(40))).convert("RGB")) is None  # a decoded copy has no tables
    png = write_image(tmp_path / "x.png", ImageData(pixels=np.zeros((8, 8, 3), np.uint8)))
    assert jpeg_quality(png) is None and read_image(png).jpeg_quality is None
    with pytest.raises(ValueError, match="64 entries"):
        quality_from_table([1, 2, 3])
