"""Reading and writing images: PNG, JPEG, WebP, TIFF, BMP and GIF, 8- and 16-bit, alpha kept
apart, animated GIF and WebP kept animated.

Every read returns an :class:`ImageData` (:mod:`.pixels`): colour as (H, W, 1) or
(H, W, 3) uint8/uint16, alpha as a separate (H, W) plane, the ICC profile carried (not
applied), and the EXIF orientation already applied to the pixels; an animated GIF or WebP
carries its other frames and their timing in ``ImageData.animation``.

Reads are built for untrusted input (web uploads): only these six formats are tried, the
pixel count is read from the file header and checked against ``max_pixels`` before anything
is decoded, and every failure is an :class:`ImageReadError` with a one-line reason. Writes
are atomic: the file appears complete under its name or not at all.

This module is the façade: the table of formats and the three entry points. The pixels live
in :mod:`.pixels`, one reader per format in :mod:`.reading`, one encoder per format in
:mod:`.writing`. Adding a format is one :data:`superres.options.IMAGE_FORMATS` entry (names,
extensions, media type) and one :data:`FORMATS` entry here (signature, reader, encoder).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from superres.atomic import write_atomic
from superres.imaging.jpeg_quality import jpeg_quality
from superres.options import IMAGE_EXTENSIONS, image_format  # IMAGE_EXTENSIONS: what read_image and write_image handle
from superres.imaging.pixels import Animation, ImageData, from_float, to_float
from superres.imaging.reading import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    ImageTooLargeError,
    bmp_size,
    check_pixels,
    finish,
    gif_size,
    jpeg_size,
    load_source,
    not_ours,
    pillow_limit_lifted,
    png_size,
    read_animated,
    read_error,
    read_pillow,
    read_png,
    read_tiff,
    webp_size,
)
from superres.imaging.writing import (
    Encoder,
    ImageWriteError,
    encode,
    encode_bmp,
    encode_gif,
    encode_jpeg,
    encode_png,
    encode_tiff,
    encode_webp,
)

__all__ = [
    "Animation",
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "check_encodable",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageFormat",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "encode_image",
    "from_float",
    "read_image",
    "to_float",
    "write_image",
]

#: A reader: (bytes, label for errors, format name, header size or None, max_pixels) ->
#: (pixels, alpha, ICC profile, EXIF[, Animation]) for :func:`superres.imaging.reading.finish`.
Reader = Callable[[bytes, str, str, "tuple[int, int] | None", int], tuple]


@dataclass(frozen=True)
class ImageFormat:
    """A file format superres reads and writes: everything about it is in its entry."""

    name: str  # as ImageData.format and encode_image name it
    label: str  # as messages name it
    extensions: tuple[str, ...]  # lower case, with the dot
    signature: Callable[[bytes], bool]  # whether a file's first bytes are this format's
    header_size: Callable[[bytes], "tuple[int, int] | None"] | None  # (width, height) before decoding
    read: Reader
    encode: Encoder


def _entry(name: str, signature: Callable[[bytes], bool], header_size, read: Reader, encode_with: Encoder) -> ImageFormat:
    """The table's entry for ``name``: its names and extensions from :data:`superres.options.IMAGE_FORMATS`."""
    known = image_format(name)
    assert known is not None, name
    return ImageFormat(known.name, known.label, known.extensions, signature, header_size, read, encode_with)


FORMATS = (
    _entry("PNG", lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"), png_size, read_png, encode_png),
    _entry("JPEG", lambda d: d.startswith(b"\xff\xd8\xff"), jpeg_size, read_pillow, encode_jpeg),
    _entry("WEBP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", webp_size, read_animated, encode_webp),
    # Classic TIFF and BigTIFF; tifffile measures it (read_tiff), so no header_size here.
    _entry("TIFF", lambda d: d[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), None, read_tiff, encode_tiff),
    _entry("BMP", lambda d: d.startswith(b"BM"), bmp_size, read_pillow, encode_bmp),
    _entry("GIF", lambda d: d[:6] in (b"GIF87a", b"GIF89a"), gif_size, read_animated, encode_gif),
)

_BY_EXTENSION = {extension: f for f in FORMATS for extension in f.extensions}
# encode_image takes a format's name or any of its extensions without the dot (JPG, TIF).
_BY_NAME = {extension[1:].upper(): f for extension, f in _BY_EXTENSION.items()} | {f.name: f for f in FORMATS}
_SUPPORTED = ", ".join(f.label for f in FORMATS[:-1]) + f" or {FORMATS[-1].label}"


def _sniff(data: bytes) -> ImageFormat | None:
    return next((f for f in FORMATS if f.signature(data)), None)


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header of a file in format ``fmt``; None if the format's reader
    measures it itself (TIFF) or the header cannot tell."""
    measure = _BY_NAME[fmt].header_size
    if measure is None:
        return None
    try:
        return measure(data)
    except struct.error:  # a header cut short
        return None


def read_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageData:
    """Read a PNG, JPEG, WebP, TIFF, BMP or GIF file (a path, or its bytes for uploads).

    The format is found from the content, not the name. 8- and 16-bit samples are kept as
    uint8 and uint16; grayscale stays (H, W, 1). Alpha (RGBA, LA, palette or key-colour
    transparency) is returned apart from the colour, straight (not premultiplied). Palette
    images become RGB; CMYK becomes RGB through its ICC profile (which is then replaced by
    sRGB's) or, without one, by Pillow's plain formula. The EXIF orientation is applied to
    the pixels and removed from the EXIF. An animated GIF or WebP gives its first frame as the
    pixels and the others, with their durations, loop count and (GIF) disposal methods, as
    ``animation`` (:class:`Animation`); other multi-frame files give their first frame.

    ``name`` labels the image in error messages (default: the path; for bytes, "<upload>").
    Images of more than ``max_pixels`` pixels (all frames together) are refused from their
    header, before any decoding. Every failure (missing, empty, damaged, truncated, not an image, too large)
    raises :class:`ImageReadError` with a one-line reason; too large is its subclass
    :class:`ImageTooLargeError`.
    """
    data, label = load_source(source, name)
    if not data:
        raise read_error(label, "empty file (0 bytes)")
    fmt = _sniff(data)
    if fmt is None:
        raise read_error(label, not_ours(data, _SUPPORTED))
    size = _header_size(data, fmt.name)
    if size is not None:
        check_pixels(label, size, max_pixels)
    pixels, alpha, icc, exif, *animation = fmt.read(data, label, fmt.name, size, max_pixels)
    image = finish(pixels, alpha, icc, exif, fmt.name, *animation)
    if fmt.name == "JPEG":
        with pillow_limit_lifted(size[0] * size[1] if size else 0):  # a size read_image has checked
            found = jpeg_quality(data)  # the header's tables: how hard the file was compressed
        if found is not None:
            image = dataclasses.replace(image, jpeg_quality=found.quality)
    return image


def encode_image(image: ImageData, format: str = "PNG", *, quality: int = 95) -> bytes:
    """The file bytes of ``image`` as PNG, JPEG, WebP, TIFF, BMP or GIF (``format``, any case).

    What each format keeps is as in :func:`write_image`. Raises :class:`ImageWriteError`
    for an unknown format, a quality outside 1-100, or an encoder failure.
    """
    fmt = _BY_NAME.get(str(format).upper())
    if fmt is None:
        raise ImageWriteError(f"cannot encode image as '{format}': unsupported format (use {_SUPPORTED})")
    try:
        return encode(image, fmt.encode, quality)
    except (ValueError, OSError, RuntimeError, TypeError) as e:
        raise ImageWriteError(f"cannot encode image as {fmt.name}: {' '.join(str(e).split())}") from None


def check_encodable(image: ImageData, format: str, *, quality: int = 95) -> None:
    """Encode an animated ``image`` as ``format`` (a name or a file's extension) and throw the
    bytes away, raising :class:`ImageWriteError` if it cannot be: run on the input before it
    is upscaled, so that a writer failure costs the input's encoding, not minutes of model
    work on every frame and gigabytes of upscaled frames first. A still image is not tried
    (every format writes one)."""
    if image.animation is None:
        return
    fmt = _BY_EXTENSION.get(str(format).lower()) or _BY_NAME.get(str(format).upper().lstrip("."))
    if fmt is None:
        raise ImageWriteError(f"cannot encode image as '{format}': unsupported format (use {_SUPPORTED})")
    try:
        encode(image, fmt.encode, quality)
    except (ValueError, OSError, RuntimeError, TypeError) as e:
        raise ImageWriteError(f"cannot write this animation as {fmt.name}: {' '.join(str(e).split())}") from None


def write_image(path: str | os.PathLike, image: ImageData, *, quality: int = 95) -> Path:
    """Write ``image`` atomically to ``path``, in the format its extension names; return the path.

    The file is written to a temporary file in the same folder and renamed over ``path``, so
    a reader never sees half a file and a failure leaves any previous file untouched.
    ``quality`` (1-100) is JPEG's and WebP's; WebP at 100 is lossless. Per format:

    - PNG: 8 or 16 bits, grayscale or RGB, with alpha; ICC profile and EXIF kept.
    - TIFF: 8 or 16 bits, grayscale or RGB, with alpha (deflate-compressed); ICC profile kept,
      EXIF not written.
    - JPEG: 8 bits (16-bit samples rounded to 8); alpha is dropped by compositing the image
      on white; ICC profile and EXIF kept; chroma not subsampled at quality 90 and above.
    - WebP: 8 bits, always RGB (grayscale is widened), with alpha; ICC (RGB only) and EXIF kept.
    - BMP: 8 bits; alpha composited on white; no metadata.
    - GIF: 8 bits, at most 256 colours a frame (median cut, no dithering, which would
      shimmer from frame to frame), alpha as on/off at half; no metadata.

    An animated image (``image.animation``) is written animated as GIF and WebP, with its
    frame durations and loop count (and, as GIF, its disposal methods); the other formats
    hold one picture and get its first frame.

    An EXIF orientation tag is never written: pixels are always stored upright. An ICC
    profile whose colour space does not match the pixels (grey vs RGB) is left out.
    """
    path = Path(path)
    fmt = _BY_EXTENSION.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(
            f"cannot write '{path}': unknown extension '{path.suffix}' (use {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if not path.parent.is_dir():
        raise ImageWriteError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    try:
        write_atomic(path, encode(image, fmt.encode, quality))
    except (ValueError, OSError, RuntimeError, TypeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageWriteError(f"cannot write '{path}': {' '.join(reason.split())}") from None
    return path
