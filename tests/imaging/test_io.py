"""Image reading and writing: every format and mode round trips with real pixel values, metadata
is carried, and every kind of bad file gives a one-line ImageReadError. Images are made here."""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import warnings
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from superres.errors import SuperresError
from superres.imaging import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageData,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    encode_image,
    from_float,
    read_image,
    to_float,
    write_image,
)
from superres.imaging import io as image_io

H, W = 24, 32
LOSSLESS = [".png", ".tif", ".tiff", ".bmp"]
SIXTEEN_BIT = [".png", ".tif"]


def _random(shape, dtype, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def _smooth_rgb(h=48, w=64) -> np.ndarray:
    """A gentle gradient that JPEG keeps within a few levels."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / (w - 1), y * 255 / (h - 1), np.full((h, w), 128.0)], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _one_line_error(excinfo, name: str) -> str:
    message = str(excinfo.value)
    assert message.startswith(f"cannot read '{name}': ")
    assert "\n" not in message
    assert isinstance(excinfo.value, SuperresError)
    return message


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", LOSSLESS)
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_round_trip_8bit(tmp_path, ext, channels):
    pixels = _random((H, W, channels), np.uint8)
    path = write_image(tmp_path / f"a{ext}", ImageData(pixels, None))
    back = read_image(path)
    assert back.pixels.dtype == np.uint8 and back.bit_depth == 8
    assert back.pixels.shape == (H, W, channels)  # grayscale stays grayscale
    np.testing.assert_array_equal(back.pixels, pixels)
    assert back.alpha is None
    assert back.size == (H, W)
    assert back.format == {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}[ext]


@pytest.mark.parametrize("ext", SIXTEEN_BIT)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_16bit_stays_16bit(tmp_path, ext, channels, with_alpha):
    pixels = _random((H, W, channels), np.uint16, seed=1)
    # Values that differ only in their low byte: an 8-bit detour would merge them.
    pixels[0, :4, 0] = [256, 257, 258, 65535]
    alpha = _random((H, W), np.uint16, seed=2) if with_alpha else None
    back = read_image(write_image(tmp_path / f"a{ext}", ImageData(pixels, alpha)))
    assert back.pixels.dtype == np.uint16 and back.bit_depth == 16
    np.testing.assert_array_equal(back.pixels, pixels)
    if with_alpha:
        np.testing.assert_array_equal(back.alpha, alpha)
    else:
        assert back.alpha is None


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_alpha_kept_apart(tmp_path, ext, channels):
    pixels = _random((H, W, channels), np.uint8, seed=3)
    alpha = _random((H, W), np.uint8, seed=4)
    alpha[0, 0], alpha[0, 1] = 0, 255
    back = read_image(write_image(tmp_path / f"a{ext}", ImageData(pixels, alpha), quality=100))
    np.testing.assert_array_equal(back.alpha, alpha)
    if ext == ".webp":  # WebP has no grayscale: the grey is widened to three equal channels
        np.testing.assert_array_equal(back.pixels, np.repeat(pixels, 3 // channels, axis=2))
    else:
        np.testing.assert_array_equal(back.pixels, pixels)


def test_webp_lossy_and_lossless(tmp_path):
    pixels = _smooth_rgb()
    lossless = read_image(write_image(tmp_path / "a.webp", ImageData(pixels), quality=100))
    np.testing.assert_array_equal(lossless.pixels, pixels)
    lossy = read_image(encode_image(ImageData(pixels), "webp", quality=80))
    error = np.abs(lossy.pixels.astype(int) - pixels).mean()
    assert 0 < error < 3


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(tmp_path, channels):
    pixels = _smooth_rgb()[..., :channels]
    back = read_image(write_image(tmp_path / "a.jpg", ImageData(pixels), quality=95))
    assert back.format == "JPEG" and back.pixels.shape == pixels.shape
    assert np.abs(back.pixels.astype(int) - pixels).max() <= 4
    # quality is honoured: a lower one makes a smaller file
    small = encode_image(ImageData(pixels), "JPEG", quality=30)
    assert len(small) < len(encode_image(ImageData(pixels), "JPEG", quality=95))


def test_jpeg_composites_alpha_on_white(tmp_path):
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[..., 0] = 200  # red everywhere
    alpha = np.zeros((16, 32), np.uint8)
    alpha[:, :16] = 255  # opaque left half, transparent right half
    back = read_image(write_image(tmp_path / "a.jpg", ImageData(pixels, alpha), quality=95))
    assert back.alpha is None
    np.testing.assert_allclose(back.pixels[4:12, 2:12].mean(axis=(0, 1)), [200, 0, 0], atol=4)
    np.testing.assert_allclose(back.pixels[4:12, 20:30].mean(axis=(0, 1)), [255, 255, 255], atol=4)


def test_bmp_composites_alpha_and_rounds_16bit(tmp_path):
    pixels = np.array([[[0, 128, 129]], [[257 * 7, 65535, 65407]]], dtype=np.uint16)  # (2, 1, 3)
    alpha = np.array([[65535], [65535]], dtype=np.uint16)
    back = read_image(write_image(tmp_path / "a.bmp", ImageData(pixels, alpha)))
    # round(x / 257): 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 65407 -> 254.502 -> 255
    np.testing.assert_array_equal(back.pixels, [[[0, 0, 1]], [[7, 255, 255]]])
    half = ImageData(np.zeros((1, 1, 3), np.uint8), np.array([[128]], np.uint8))
    # 0 over white at alpha 128/255: 255 * 127 / 255 = 127
    np.testing.assert_array_equal(read_image(encode_image(half, "BMP")).pixels, [[[127, 127, 127]]])


# --------------------------------------------------------------------------- modes from other writers


def test_palette_with_and_without_transparency(tmp_path):
    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255]
    im = Image.frombytes("P", (3, 2), index.tobytes())
    im.putpalette(palette)
    colours = np.array(palette, np.uint8).reshape(3, 3)[index]

    im.save(tmp_path / "plain.png")
    plain = read_image(tmp_path / "plain.png")
    np.testing.assert_array_equal(plain.pixels, colours)
    assert plain.alpha is None

    im.save(tmp_path / "clear.png", transparency=1)  # green is transparent
    clear = read_image(tmp_path / "clear.png")
    np.testing.assert_array_equal(clear.pixels, colours)
    np.testing.assert_array_equal(clear.alpha, np.where(index == 1, 0, 255))


def test_grey_alpha_and_one_bit_and_key_colour(tmp_path):
    la = np.dstack([_random((H, W), np.uint8, 5), _random((H, W), np.uint8, 6)])
    Image.fromarray(la).save(tmp_path / "la.png")
    back = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(back.pixels[..., 0], la[..., 0])
    np.testing.assert_array_equal(back.alpha, la[..., 1])

    bits = _random((H, W), np.uint8, 7) > 127
    Image.fromarray(bits).save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png").pixels[..., 0], np.where(bits, 255, 0))

    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "key.png", transparency=(10, 20, 30))
    keyed = read_image(tmp_path / "key.png")
    np.testing.assert_array_equal(keyed.pixels, rgb)
    np.testing.assert_array_equal(keyed.alpha, [[0, 255], [255, 255]])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((16, 32, 4), np.uint8)
    cmyk[:, :16] = (255, 0, 0, 0)  # cyan
    cmyk[:, 16:] = (0, 0, 0, 128)  # half black
    Image.frombytes("CMYK", (32, 16), cmyk.tobytes()).save(tmp_path / "cmyk.jpg", quality=95)
    back = read_image(tmp_path / "cmyk.jpg")
    assert back.pixels.shape == (16, 32, 3) and back.alpha is None
    np.testing.assert_allclose(back.pixels[4:12, 2:12].mean(axis=(0, 1)), [0, 255, 255], atol=4)
    np.testing.assert_allclose(back.pixels[4:12, 20:30].mean(axis=(0, 1)), [127, 127, 127], atol=4)
    assert back.icc_profile is None

    # A profile that is not CMYK cannot convert it: the plain formula is used, the profile dropped.
    Image.frombytes("CMYK", (32, 16), cmyk.tobytes()).save(tmp_path / "odd.jpg", quality=95, icc_profile=_srgb_icc())
    odd = read_image(tmp_path / "odd.jpg")
    np.testing.assert_array_equal(odd.pixels, back.pixels)
    assert odd.icc_profile is None


def test_16bit_png_key_colour_becomes_alpha():
    pixels = _random((4, 5, 3), np.uint16, seed=8)
    png = encode_image(ImageData(pixels))
    key = _png_chunk(b"tRNS", struct.pack(">HHH", *pixels[1, 2]))
    back = read_image(png[:33] + key + png[33:])
    np.testing.assert_array_equal(back.pixels, pixels)
    expected = np.full((4, 5), 65535)
    expected[1, 2] = 0
    np.testing.assert_array_equal(back.alpha, expected)


def test_tiff_variants_read_by_tifffile(tmp_path):
    rgb = _random((H, W, 3), np.uint16, seed=9)
    path = tmp_path / "big_endian_planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate", byteorder=">")
    np.testing.assert_array_equal(read_image(path).pixels, rgb)

    grey = _random((H, W), np.uint16, seed=10)
    tifffile.imwrite(tmp_path / "white.tif", grey, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "white.tif").pixels[..., 0], 65535 - grey)

    # Premultiplied alpha is divided out: colour 1000 at alpha 1/2 is stored as 500.
    stored = np.array([[[500, 0, 250, 32768]]], np.uint16)
    tifffile.imwrite(tmp_path / "assoc.tif", stored, photometric="rgb", extrasamples=["assocalpha"])
    back = read_image(tmp_path / "assoc.tif")
    np.testing.assert_array_equal(back.alpha, [[32768]])
    np.testing.assert_array_equal(back.pixels, [[[1000, 0, 500]]])


# --------------------------------------------------------------------------- metadata


def _with_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "superres test camera"  # Make: must survive
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = _random((5, 7, 3), np.uint8, seed=orientation)
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=_with_exif(orientation))
    back = read_image(tmp_path / "o.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(back.pixels, expected)
    exif = Image.Exif()
    exif.load(back.exif)
    assert 0x0112 not in exif and exif[0x010F] == "superres test camera"


def test_exif_orientation_6_jpeg_and_16bit(tmp_path):
    rgb = _smooth_rgb(16, 24)
    Image.fromarray(rgb).save(tmp_path / "o6.jpg", quality=95, exif=_with_exif(6))
    back = read_image(tmp_path / "o6.jpg")
    assert back.pixels.shape == (24, 16, 3)  # turned 90 degrees clockwise
    clockwise = np.abs(back.pixels.astype(int) - np.rot90(rgb, k=-1)).mean()
    anticlockwise = np.abs(back.pixels.astype(int) - np.rot90(rgb, k=1)).mean()
    assert clockwise < 3
    assert anticlockwise > 50

    deep = _random((4, 6, 3), np.uint16, seed=11)
    alpha = _random((4, 6), np.uint16, seed=12)
    raw = ImageData(deep, alpha, exif=_with_exif(6).tobytes())
    # Written with the tag (our writer drops it), so put the eXIf chunk in by hand.
    png = encode_image(ImageData(deep, alpha))
    png = png[:33] + _png_chunk(b"eXIf", raw.exif[6:]) + png[33:]
    turned = read_image(png)
    np.testing.assert_array_equal(turned.pixels, np.rot90(deep, k=-1))
    np.testing.assert_array_equal(turned.alpha, np.rot90(alpha, k=-1))


def test_orientation_is_not_written(tmp_path):
    rgb = _random((5, 7, 3), np.uint8, seed=13)
    image = ImageData(rgb, exif=_with_exif(6).tobytes())
    for ext in (".png", ".jpg", ".webp"):
        back = read_image(write_image(tmp_path / f"a{ext}", image, quality=100))
        assert back.pixels.shape == (5, 7, 3), ext  # stored upright, not turned again
        exif = Image.Exif()
        exif.load(back.exif)
        assert 0x0112 not in exif and exif[0x010F] == "superres test camera", ext


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_icc_profile_carried(tmp_path, ext, dtype):
    icc = _srgb_icc()
    image = ImageData(_random((H, W, 3), dtype, seed=14), icc_profile=icc)
    assert read_image(write_image(tmp_path / f"a{ext}", image)).icc_profile == icc


def test_icc_profile_of_wrong_colour_space_is_dropped(tmp_path):
    grey = ImageData(_random((H, W, 1), np.uint8, seed=15), icc_profile=_srgb_icc())
    assert read_image(write_image(tmp_path / "g.png", grey)).icc_profile is None


# --------------------------------------------------------------------------- bad files


def _png_bytes() -> bytes:
    return encode_image(ImageData(_random((64, 64, 3), np.uint8, seed=16)))


def test_corrupt_png(tmp_path):
    data = bytearray(_png_bytes())
    data[200:260] = bytes(b ^ 0xFF for b in data[200:260])
    (tmp_path / "bad.png").write_bytes(data)
    with pytest.raises(ImageReadError) as excinfo:
        read_image(tmp_path / "bad.png")
    assert "damaged" in _one_line_error(excinfo, str(tmp_path / "bad.png"))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_truncated_png(tmp_path, dtype):
    data = encode_image(ImageData(_random((64, 64, 3), dtype, seed=17)))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as excinfo:
        read_image(tmp_path / "cut.png")
    assert "truncated" in _one_line_error(excinfo, str(tmp_path / "cut.png"))


def test_truncated_tiff(tmp_path):
    data = encode_image(ImageData(_random((64, 64, 3), np.uint16, seed=18)), "TIFF")
    with pytest.raises(ImageReadError) as excinfo:
        read_image(data[: len(data) // 2], name="cut.tif")
    assert "TIFF" in _one_line_error(excinfo, "cut.tif")


def test_text_named_jpg(tmp_path):
    (tmp_path / "page.jpg").write_text("<html><body>not a picture</body></html>")
    with pytest.raises(ImageReadError) as excinfo:
        read_image(tmp_path / "page.jpg")
    assert "not an image (first bytes 0x3c68746d6c3e3c62..." in _one_line_error(excinfo, str(tmp_path / "page.jpg"))


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty file \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_missing_file_folder_and_other_formats(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError) as excinfo:  # GIF is read since issue 15: Photoshop stands in
        read_image(b"8BPS\x00\x01" + bytes(40), name="layers.psd")
    assert "unsupported format Photoshop (PSD)" in _one_line_error(excinfo, "layers.psd")


@pytest.mark.parametrize(
    "fmt, mode, options",
    [
        ("PNG", "RGB", {}),
        ("JPEG", "RGB", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {}),
        ("WEBP", "RGB", {"lossless": True}),  # VP8L header
        ("WEBP", "RGB", {"quality": 80}),  # VP8 header
        ("WEBP", "RGBA", {"quality": 80}),  # VP8X header
    ],
)
def test_decompression_bomb_refused_from_header(fmt, mode, options):
    buffer = io.BytesIO()
    Image.new(mode, (64, 48), (1, 2, 3, 4)[: len(mode)]).save(buffer, fmt, **options)
    data = buffer.getvalue()
    if fmt != "TIFF":  # TIFF is measured by tifffile
        assert image_io._header_size(data, fmt) == (64, 48)
    assert read_image(data, max_pixels=64 * 48).size == (48, 64)
    with pytest.raises(ImageReadError) as excinfo:
        read_image(data, name="bomb", max_pixels=64 * 48 - 1)
    message = _one_line_error(excinfo, "bomb")
    assert "too large: 64x48 = 3,072 pixels, over the limit of 3,071 (max_pixels)" in message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_too_large_is_its_own_error_type_with_the_size_and_limit(fmt):
    # So that a caller (the web app's 413) tells it from every other unreadable file.
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, fmt)
    with pytest.raises(ImageTooLargeError) as excinfo:
        read_image(buffer.getvalue(), name="big", max_pixels=1000)
    assert isinstance(excinfo.value, ImageReadError)
    assert (excinfo.value.size, excinfo.value.limit) == ((64, 48), 1000)
    with pytest.raises(ImageReadError) as other:
        read_image(b"not an image", name="text")
    assert not isinstance(other.value, ImageTooLargeError)


def test_bomb_refused_before_decoding():
    # A 16-bit PNG header claiming 100000 x 100000 with no pixel data behind it.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 16, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    with pytest.raises(ImageReadError, match=r"too large: 100000x100000 = 10,000,000,000 pixels"):
        read_image(data)
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_pillow_limit_neither_warns_nor_changes(monkeypatch):
    # Pillow's own limit below our max_pixels: the image is still read, without a
    # DecompressionBombWarning or Error, and Pillow's setting is left as it was.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    pixels = _random((30, 40, 3), np.uint8, seed=19)
    data = encode_image(ImageData(pixels), "JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_image(data)
    assert back.size == (30, 40)
    assert Image.MAX_IMAGE_PIXELS == 100

    # Concurrent reads, some needing the lift and some not, all succeed and restore it.
    small = encode_image(ImageData(pixels[:5, :5]), "PNG")
    failures = []

    def work(blob):
        try:
            for _ in range(30):
                read_image(blob)
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(data if i % 2 else small,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert Image.MAX_IMAGE_PIXELS == 100


# --------------------------------------------------------------------------- writing


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_io.os, "replace", refuse)
    with pytest.raises(ImageWriteError, match=r"cannot write '.*out.png': No space left on device"):
        write_image(target, ImageData(_random((H, W, 3), np.uint8)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert target.read_bytes() == b"previous"


def test_write_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    pixels = _random((H, W, 3), np.uint8, seed=20)
    assert write_image(str(target), ImageData(pixels)) == target
    np.testing.assert_array_equal(read_image(target).pixels, pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_write_errors(tmp_path):
    image = ImageData(_random((H, W, 3), np.uint8))
    with pytest.raises(ImageWriteError, match="unknown extension '.psd'"):
        write_image(tmp_path / "a.psd", image)
    with pytest.raises(ImageWriteError, match="folder .* does not exist"):
        write_image(tmp_path / "missing" / "a.png", image)
    with pytest.raises(ImageWriteError, match="quality must be an integer from 1 to 100, got 0"):
        write_image(tmp_path / "a.jpg", image, quality=0)
    with pytest.raises(ImageWriteError, match="unsupported format"):
        encode_image(image, "PSD")
    assert list(tmp_path.iterdir()) == []


def test_encode_format_names():
    image = ImageData(_random((H, W, 3), np.uint8))
    assert encode_image(image, "jpg")[:3] == b"\xff\xd8\xff"
    assert encode_image(image, "tif")[:4] == b"II*\x00"
    assert encode_image(image)[:8] == b"\x89PNG\r\n\x1a\n"
    assert IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}


# --------------------------------------------------------------------------- data and conversions


def test_image_data_checks_its_arrays():
    with pytest.raises(ValueError, match=r"\(H, W, 1\) or \(H, W, 3\)"):
        ImageData(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        ImageData(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        ImageData(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        ImageData(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint16))


@pytest.mark.parametrize("dtype, peak", [(np.uint8, 255), (np.uint16, 65535)])
def test_float_conversions_round_trip_every_value(dtype, peak):
    values = np.arange(peak + 1, dtype=dtype)
    as_float = to_float(values)
    assert as_float.dtype == np.float32
    assert as_float[0] == 0.0 and as_float[-1] == 1.0
    np.testing.assert_allclose(as_float, values / peak, rtol=1e-6)
    np.testing.assert_array_equal(from_float(as_float, dtype), values)


def test_from_float_rounds_and_clips():
    x = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.7, np.nan], np.float32)
    np.testing.assert_array_equal(from_float(x, np.uint8), [0, 0, 0, 1, 255, 255, 0])
    np.testing.assert_array_equal(from_float(np.array([0.5]), "uint16"), [32768])  # 32767.5 -> even
    with pytest.raises(ValueError):
        from_float(x, np.int32)


def test_bundled_demo_image():
    from importlib.resources import files

    demo = read_image(files("superres") / "assets" / "demo.png")
    assert demo.pixels.shape == (144, 192, 3) and demo.bit_depth == 8 and demo.alpha is None
    assert demo.pixels.std() > 20  # a detailed crop, not a flat patch


def test_reading_and_writing_images_does_not_import_torch():
    # imaging.io sits at the bottom of the house: a script that only reads and writes images
    # must not pay PyTorch's import (over a second); the tensor conversions import it when called.
    import subprocess
    import sys

    code = "import sys, superres.imaging.io, superres.imaging.pixels; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
