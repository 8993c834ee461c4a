"""GIF and animated WebP: still and animated files in and out, with frame durations, loop
count, disposal methods and transparency kept, and upscaled frame by frame."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.imaging import ImageData, ImageTooLargeError, encode_image, read_image, write_image
from superres.imaging.io import Animation
from superres.inference import load

DURATIONS = [100, 200, 300, 400]


def _sprite_gif(loop: int | None = 3, disposal: int = 2) -> bytes:
    """A red block walking over a transparent 24x20 canvas, four frames."""
    frames = []
    for i in range(4):
        rgba = np.zeros((20, 24, 4), np.uint8)
        rgba[..., :3] = (200, 40, 10)
        rgba[2:10, i * 4 : i * 4 + 6, 3] = 255
        frames.append(Image.fromarray(rgba, "RGBA"))
    buffer = io.BytesIO()
    extra = {} if loop is None else {"loop": loop}
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=DURATIONS, disposal=disposal, **extra)
    return buffer.getvalue()


def test_an_animated_gif_reads_with_its_frames_timing_and_transparency():
    image = read_image(_sprite_gif(), name="walk.gif")
    assert image.format == "GIF" and image.size == (20, 24) and image.alpha is not None
    assert len(image.frames) == 4 and image.animation.durations == DURATIONS
    assert image.animation.loop == 3 and image.animation.disposals == [2, 2, 2, 2]
    for i, frame in enumerate(image.frames):
        assert np.array_equal(np.flatnonzero(frame.alpha[5] == 255), np.arange(i * 4, i * 4 + 6))


@pytest.mark.parametrize("loop, disposal", [(3, 2), (0, 1), (None, 2)])
def test_gif_round_trip_keeps_frames_durations_loop_and_disposal(loop, disposal):
    image = read_image(_sprite_gif(loop, disposal))
    back = read_image(encode_image(image, "GIF"))
    assert back.animation.durations == DURATIONS and back.animation.loop == loop
    assert back.animation.disposals == [disposal] * 4
    for a, b in zip(image.frames, back.frames):
        assert np.array_equal(a.alpha, b.alpha)
        opaque = a.alpha == 255
        assert np.array_equal(a.pixels[opaque], b.pixels[opaque])


def test_a_still_gif_is_a_still_image():
    pixels = np.arange(12 * 4 * 3, dtype=np.uint8).reshape(12, 4, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "GIF")
    image = read_image(buffer.getvalue())
    assert image.animation is None and image.alpha is None and np.array_equal(image.pixels, pixels)
    assert np.array_equal(read_image(encode_image(image, "GIF")).pixels, pixels)  # 48 colours: exact


def test_many_colours_are_cut_to_a_palette_per_frame():
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    back = read_image(encode_image(ImageData(pixels=pixels), "GIF"))
    assert back.pixels.shape == pixels.shape and len(np.unique(back.pixels.reshape(-1, 3), axis=0)) <= 256


def test_animated_webp_round_trip_and_gif_to_webp():
    image = read_image(_sprite_gif())
    webp = read_image(encode_image(image, "WEBP"))
    assert webp.format == "WEBP" and webp.animation.durations == DURATIONS and webp.animation.loop == 3
    assert all(np.array_equal(a.alpha, b.alpha) for a, b in zip(image.frames, webp.frames))
    back = read_image(encode_image(webp, "GIF"))  # no disposals in WebP: GIF gets "restore to background"
    assert back.animation.durations == DURATIONS and back.animation.disposals == [2, 2, 2, 2]


def test_other_formats_get_the_first_frame():
    image = read_image(_sprite_gif())
    png = read_image(encode_image(image, "PNG"))
    assert png.animation is None and np.array_equal(png.alpha, image.alpha)


def test_all_frames_count_against_max_pixels():
    data = _sprite_gif()
    assert read_image(data, max_pixels=24 * 20 * 4).animation is not None
    with pytest.raises(ImageTooLargeError, match="4 frames of 24x20"):
        read_image(data, max_pixels=24 * 20 * 4 - 1)


def test_animation_checks_its_counts():
    frame = ImageData(pixels=np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="2 frames but 3 durations"):
        Animation(frames=[frame], durations=[1, 2, 3])


def test_an_animated_gif_comes_back_animated_with_the_same_frames_and_durations(tmp_path):
    (tmp_path / "walk.gif").write_bytes(_sprite_gif())
    assert main(["upscale", str(tmp_path / "walk.gif"), "-m", "espcn", "-s", "2"]) == 0
    out = read_image(tmp_path / "walk_x2.gif")
    assert out.size == (40, 48) and out.animation.durations == DURATIONS and out.animation.loop == 3
    assert out.animation.disposals == [2, 2, 2, 2] and len(out.frames) == 4
    for i, frame in enumerate(out.frames):  # each frame upscaled: the block still walks, transparency kept
        opaque = np.flatnonzero(frame.alpha[10] == 255)
        assert opaque.min() in range(i * 8 - 1, i * 8 + 2) and opaque.max() in range(i * 8 + 10, i * 8 + 13)
        assert frame.alpha[30].max() == 0


def test_the_upscaler_keeps_the_animation_at_any_size():
    image = read_image(_sprite_gif())
    out = load("bicubic", width=36).upscale_image_data(image)
    assert out.size == (30, 36) and all(f.pixels.shape == (30, 36, 3) for f in out.frames)
    assert out.animation.durations == DURATIONS


def _repeated_gif(frames: int, side: int, sub: int = 1) -> bytes:
    """A GIF whose ``frames`` frames each draw the same ``sub``x``sub`` sub-image at (0, 0) of a
    ``side``x``side`` canvas, written byte by byte: Pillow's writer would merge such frames,
    so it cannot make this file, which other tools do make."""
    import struct

    # The sub-image's compressed pixels (all colour index 0), as Pillow itself encodes them.
    buffer = io.BytesIO()
    Image.new("P", (sub, sub), 0).save(buffer, "GIF")
    data = buffer.getvalue()
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # header, screen, colour table
    while data[pos] == 0x21:  # extensions: label, then sub-blocks up to an empty one
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C
    image = data[pos + 10 : -1]  # after the image descriptor: code size, sub-blocks, terminator

    out = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + bytes([200, 30, 30, 0, 0, 0])
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x04" + struct.pack("<H", 10) + b"\x00\x00"  # disposal 1 (keep), 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, sub, sub, 0) + image
    return out + b"\x3b"


@pytest.mark.parametrize("frames, side, sub", [(3, 1, 1), (40, 96, 96)])
def test_an_animation_whose_frames_end_up_identical_is_written(tmp_path, capsys, frames, side, sub):
    """Issue 32, item 5: Pillow failed with "int() argument must be ... not 'list'" when every
    frame merged into one (our per-frame disposal list on a single frame)."""
    source = tmp_path / "same.gif"
    source.write_bytes(_repeated_gif(frames, side, sub))
    image = read_image(source)
    assert image.animation is not None and len(image.animation.frames) == frames - 1
    assert main(["upscale", str(source), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    with Image.open(tmp_path / "out" / "same_x2.gif") as result:
        assert result.size == (2 * side, 2 * side)
        assert getattr(result, "n_frames", 1) == 1 and result.info["duration"] == 100 * frames  # one picture, the whole time
        assert result.convert("RGB").getpixel((0, 0)) == (200, 30, 30)


def test_frames_that_repeat_between_changes_keep_their_timing():
    """Merging keeps the total time of each picture, and the frames that differ."""
    red, blue = (np.full((4, 4, 3), c, np.uint8) for c in ((200, 0, 0), (0, 0, 200)))
    frames = [ImageData(pixels=p) for p in (red, blue, blue, red)]
    image = ImageData(pixels=red, animation=Animation(frames=frames[1:], durations=[10, 20, 30, 40], disposals=[1, 1, 2, 1]))
    with Image.open(io.BytesIO(encode_image(image, "GIF"))) as gif:
        assert gif.n_frames == 3
        durations = []
        for i in range(3):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [10, 50, 40]
