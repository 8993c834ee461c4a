"""Encoding images, one encoder per format, for :func:`superres.imaging.io.encode_image` and
:func:`~superres.imaging.io.write_image`.

An encoder takes an :class:`ImageData`, the ICC profile and EXIF that fit it (a profile of
another colour space is left out, the EXIF orientation is removed: pixels are stored
upright) and a quality of 1-100, and returns the file's bytes.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from superres.errors import SuperresError
from superres.imaging.pixels import ImageData, composite_on_white, to_8bit
from superres.imaging.reading import DECODE_ERRORS, ICC_TAG, ORIENTATION_TAG

__all__ = ["Encoder", "ImageWriteError", "encode", "encode_bmp", "encode_gif", "encode_jpeg", "encode_png", "encode_tiff", "encode_webp"]

#: An encoder: (image, ICC profile or None, EXIF or None, quality) -> the file's bytes.
Encoder = Callable[[ImageData, "bytes | None", "bytes | None", int], bytes]


class ImageWriteError(SuperresError):
    """An image could not be written or encoded; the message names the file and the reason."""


def _icc_matching(icc: bytes | None, channels: int) -> bytes | None:
    """The profile if its colour space (header bytes 16-20) fits the pixels, else None.

    A grey profile on RGB pixels (a grayscale source written as WebP) or an RGB one on grey
    pixels makes viewers draw wrong colours; no profile means sRGB, the lesser harm.
    """
    if not icc or len(icc) < 128:
        return None
    return icc if icc[16:20] == (b"GRAY" if channels == 1 else b"RGB ") else None


def _exif_without_orientation(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    if not exif.startswith(b"Exif\x00\x00"):  # bare TIFF data, as PNG and WebP store it
        exif = b"Exif\x00\x00" + exif
    parsed = Image.Exif()
    try:
        parsed.load(exif)
        if ORIENTATION_TAG not in parsed:
            return exif
        del parsed[ORIENTATION_TAG]
        return parsed.tobytes() if len(parsed) else None
    except DECODE_ERRORS + (TypeError,):
        # Unparseable EXIF is dropped rather than copied: its orientation cannot be removed.
        return None


def _samples(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Colour and alpha as one (H, W) or (H, W, C) array, as encoders take them."""
    array = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    return np.ascontiguousarray(array[..., 0] if array.shape[2] == 1 else array)


def _pillow_save(pixels8: np.ndarray, alpha8: np.ndarray | None, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_samples(pixels8, alpha8)).save(buffer, fmt, **{k: v for k, v in options.items() if v is not None})
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


#: How the PNGs we write are compressed: OpenCV's ``imwrite`` settings (and so Real-ESRGAN's),
#: zlib level 1 with its run-length strategy and every row filtered by SUB. At Pillow's
#: default (level 6, each row's filter chosen by trying all five) a 480x320 result took 45 ms
#: to encode, more than SwiftRep x4 took to make it (31 ms); Pillow at level 1 took 11.7 ms,
#: these settings 5.4 ms, for files 13% larger than Pillow's level 1 (168 against 148 KB; the
#: same pixels: PNG is lossless at every setting).
PNG_SETTINGS = dict(level=1, strategy=3, filter=16)


def encode_png(image: ImageData, icc, exif, quality: int) -> bytes:
    """PNG, 8 or 16 bits, through imagecodecs; ICC profile and EXIF kept."""
    png = imagecodecs.png_encode(_samples(image.pixels, image.alpha), **PNG_SETTINGS)
    # imagecodecs writes no metadata: add the profile and EXIF right after IHDR (8 + 25 bytes),
    # where the PNG spec wants iCCP (before IDAT) and where readers look for eXIf.
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    return png[:33] + extra + png[33:]


def encode_jpeg(image: ImageData, icc, exif, quality: int) -> bytes:
    """JPEG: 8 bits, alpha composited on white; 4:4:4 chroma from quality 90."""
    pixels = image.pixels if image.alpha is None else composite_on_white(image.pixels, image.alpha)
    # Chroma at full resolution when high quality is asked for: 4:2:0 blurs the colour edges
    # that super-resolution just sharpened.
    subsampling = 0 if quality >= 90 else 2  # 4:4:4 or 4:2:0
    return _pillow_save(
        to_8bit(pixels), None, "JPEG", quality=quality, subsampling=subsampling, icc_profile=icc, exif=exif
    )


def _rgb8(image: ImageData) -> np.ndarray:
    pixels = image.pixels if image.pixels.shape[2] == 3 else np.repeat(image.pixels, 3, axis=2)
    return to_8bit(pixels)


def encode_webp(image: ImageData, icc, exif, quality: int) -> bytes:
    """WebP: 8-bit RGB (grey widened) with alpha; lossless at quality 100; an animation is
    written animated with its durations and loop count (once where it had none), and
    lossless if it has alpha: libwebp's lossy animation encoder (1.6, through Pillow 13)
    dropped an on/off alpha, the GIF kind, from the whole file."""
    extra = {}
    lossless = quality == 100
    if image.animation is not None:
        lossless = lossless or image.alpha is not None
        frames = [Image.fromarray(_samples(_rgb8(f), None if f.alpha is None else to_8bit(f.alpha))) for f in image.frames[1:]]
        loop = image.animation.loop
        extra = dict(save_all=True, append_images=frames, duration=image.animation.durations, loop=1 if loop is None else loop)
    alpha = None if image.alpha is None else to_8bit(image.alpha)
    return _pillow_save(
        _rgb8(image),  # WebP has no grey
        alpha,
        "WEBP",
        **extra,
        quality=quality,
        lossless=lossless,
        exact=True,  # keep the colour under transparent pixels, which lossless WebP would otherwise zero
        icc_profile=_icc_matching(icc, 3),
        exif=exif.removeprefix(b"Exif\x00\x00") if exif else None,  # the WebP EXIF chunk holds bare TIFF data
    )


def encode_tiff(image: ImageData, icc, exif, quality: int) -> bytes:
    """TIFF: 8 or 16 bits with unassociated alpha, deflate-compressed; ICC profile kept."""
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        _samples(image.pixels, image.alpha),
        photometric="rgb" if image.pixels.shape[2] == 3 else "minisblack",
        extrasamples=("unassalpha",) if image.alpha is not None else None,
        compression="zlib",
        metadata=None,  # no tifffile JSON in ImageDescription
        software=False,
        extratags=[(ICC_TAG, 7, len(icc), icc, True)] if icc else None,
    )
    return buffer.getvalue()


def encode_bmp(image: ImageData, icc, exif, quality: int) -> bytes:
    """BMP: 8 bits, alpha composited on white, no metadata."""
    # Pillow writes a 32-bit BMP's fourth byte but reads it back as padding, so alpha is
    # composited on white here rather than kept in a form nobody will see.
    pixels = image.pixels if image.alpha is None else composite_on_white(image.pixels, image.alpha)
    return _pillow_save(to_8bit(pixels), None, "BMP")


def _gif_frame(frame: ImageData) -> Image.Image:
    """One frame as a palette image: its colours cut to 256 (255 and index 255 transparent
    where it has alpha, on where alpha is at least half) by median cut, without dithering,
    whose noise would crawl from frame to frame."""
    rgb = Image.fromarray(_rgb8(frame))
    if frame.alpha is None:
        return rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    paletted = rgb.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    indices = np.array(paletted)
    indices[to_8bit(frame.alpha) < 128] = 255
    palette = paletted.getpalette()[: 255 * 3]
    out = Image.fromarray(indices, "P")
    out.putpalette(palette + [0] * (256 * 3 - len(palette)))
    out.info["transparency"] = 255
    return out


def encode_gif(image: ImageData, icc, exif, quality: int) -> bytes:
    """GIF: 8 bits, 256 colours a frame, alpha on or off; an animation with its durations,
    loop count and disposal methods (where the source had none: restore to background after
    a frame with transparency, so earlier frames do not show through, else keep). No metadata.

    Each frame is written whole, as it shows: under any of the source's disposal methods a
    whole composited frame drawn over what the previous one left shows what the source
    showed. A frame that shows the same as the one before it is merged into it here, their
    durations added: Pillow would merge it too, but when every frame merged into one it
    wrote that one with the per-frame disposal list and failed (a TypeError).
    """
    frames = [_gif_frame(f) for f in image.frames]
    options = {}
    if image.alpha is not None:
        options["transparency"] = 255
    animation = image.animation
    if animation is not None:
        disposals = animation.disposals or [2 if image.alpha is not None else 1] * len(frames)
        frames, durations, disposals = _merge_repeated(frames, list(animation.durations), list(disposals))
        if len(frames) > 1:
            options.update(save_all=True, append_images=frames[1:], duration=durations, disposal=disposals)
        else:  # one picture shown for the whole time: a single frame, with scalar settings
            options.update(duration=durations[0], disposal=disposals[0])
        if animation.loop is not None:
            options["loop"] = animation.loop
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", optimize=False, **options)
    return buffer.getvalue()


def _merge_repeated(frames: list, durations: list[int], disposals: list[int]) -> tuple[list, list[int], list[int]]:
    """Consecutive palette frames that show the same colours merged into the first, its
    duration the sum and its disposal the last one's (disposal acts after a frame shows)."""
    kept, kept_durations, kept_disposals = [frames[0]], [durations[0]], [disposals[0]]
    shown = frames[0].copy().convert("RGBA").tobytes()  # on a copy: convert() leaves a palette Pillow then rejects
    for frame, duration, disposal in zip(frames[1:], durations[1:], disposals[1:]):
        looks = frame.copy().convert("RGBA").tobytes()
        if looks == shown:
            kept_durations[-1] += duration
            kept_disposals[-1] = disposal
            continue
        kept.append(frame)
        kept_durations.append(duration)
        kept_disposals.append(disposal)
        shown = looks
    return kept, kept_durations, kept_disposals


def encode(image: ImageData, encoder: Encoder, quality: int) -> bytes:
    """Bytes of ``image`` by ``encoder``; raises ValueError or OSError with a one-line reason."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    channels = image.pixels.shape[2]
    icc = _icc_matching(image.icc_profile, channels)
    exif = _exif_without_orientation(image.exif)
    return encoder(image, icc, exif, int(quality))
