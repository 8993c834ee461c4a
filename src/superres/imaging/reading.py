"""Reading image files, one reader per format, for :func:`superres.imaging.io.read_image`.

Every reader returns colour as (H, W, 1) or (H, W, 3) uint8/uint16, alpha as a separate
(H, W) plane, the ICC profile carried (not applied) and the EXIF with its orientation still
to apply (:func:`finish` applies it). Palette images become RGB(A), CMYK becomes RGB
(through its ICC profile when it has one), 1-bit becomes 0/255 grayscale.

Pillow decodes most files. It reduces 16-bit-per-channel colour and grey+alpha PNG and TIFF
to 8 bits (Pillow 13 still does), so 16-bit PNG goes through imagecodecs (libpng) and
16-bit TIFF through tifffile; both keep every bit.

Reads are built for untrusted input (web uploads): the pixel count is read from the file
header and checked against ``max_pixels`` before anything is decoded, and every failure is
an :class:`ImageReadError` with a one-line reason (:class:`ImageTooLargeError` for too large).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, ImageCms

from superres.errors import SuperresError
from superres.imaging.pixels import Animation, ImageData, peak_value

__all__ = [
    "DECODE_ERRORS",
    "DEFAULT_MAX_PIXELS",
    "ICC_TAG",
    "ORIENTATION_TAG",
    "ImageReadError",
    "ImageTooLargeError",
    "bmp_size",
    "check_pixels",
    "finish",
    "gif_size",
    "pillow_limit_lifted",
    "jpeg_size",
    "load_source",
    "not_ours",
    "png_size",
    "read_error",
    "read_animated",
    "read_pillow",
    "read_png",
    "read_tiff",
    "webp_size",
]

#: Largest image :func:`read_image` decodes unless told otherwise: 200 megapixels, about
#: 600 MB as 8-bit RGB and several GB once a model works on it in float32.
DEFAULT_MAX_PIXELS = 200_000_000

# Magic numbers of formats people upload that we do not read, so the error can name them.
_OTHER_FORMATS = (
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"\x00\x00\x01\x00", "ICO"),
)

ORIENTATION_TAG = 0x0112  # EXIF Orientation
# Of a TIFF's own tags, the ones that describe the picture rather than lay out its bytes:
# only these are worth carrying as EXIF into another format.
# ImageDescription, Make, Model, Software, DateTime, Artist, Copyright.
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
ICC_TAG = 34675  # TIFF's InterColorProfile
_MAX_ICC_BYTES = 64 << 20

# What decoders raise on damaged data: Pillow (OSError, SyntaxError, ValueError, EOFError),
# imagecodecs (RuntimeError subclasses), tifffile (TiffFileError, a ValueError), zlib, struct.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    RuntimeError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
)


class ImageReadError(SuperresError):
    """An image file could not be read; the message is ``cannot read 'NAME': reason``."""


class ImageTooLargeError(ImageReadError):
    """An image over the pixel limit, refused from its header before it is decoded.

    ``size`` is its (width, height) when the header states it (None when only Pillow's own
    decompression-bomb check could tell), ``limit`` the number of pixels it went over.
    """

    def __init__(self, message: str, *, size: tuple[int, int] | None, limit: int):
        super().__init__(message)
        self.size = size
        self.limit = limit


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W) or (H, W, C) array, as a viewer would show it."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = np.rot90(array, k=-1)
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = np.rot90(array, k=1)
    return np.ascontiguousarray(array)


def read_error(name: str, reason: str) -> ImageReadError:
    """``cannot read 'NAME': reason`` on one line."""
    return ImageReadError(f"cannot read '{name}': {' '.join(str(reason).split())}")


def load_source(source, name: str | None) -> tuple[bytes, str]:
    """The bytes of a path (or of bytes themselves) and the label that errors give it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name if name is not None else "<upload>"
    label = name if name is not None else os.fspath(source)
    try:
        return Path(source).read_bytes(), label
    except FileNotFoundError:
        raise read_error(label, "no such file") from None
    except IsADirectoryError:
        raise read_error(label, "is a folder, not an image file") from None
    except PermissionError:
        raise read_error(label, "permission denied") from None
    except OSError as e:
        raise read_error(label, e.strerror or str(e)) from None


def not_ours(data: bytes, supported: str) -> str:
    """Why ``data``, in no format that ``supported`` names, cannot be read."""
    for magic, label in _OTHER_FORMATS:
        if data.startswith(magic):
            return f"unsupported format {label} (superres reads {supported})"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return f"unsupported format {'AVIF' if data[8:11] == b'avi' else 'HEIF'} (superres reads {supported})"
    return f"not an image (first bytes 0x{data[:8].hex()}...)"


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first frame header; None if it comes after the scan data."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xDA:  # scan data before any frame header: let Pillow judge the file
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn (not DHT, JPG, DAC)
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP's VP8X, VP8L or VP8 header."""
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L":  # lossless: 14-bit width-1 and height-1 after the 0x2f signature
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def gif_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a GIF's logical screen, which every frame lies within; None when
    what follows the screen descriptor (and its colour table) is not a GIF block (image,
    extension or trailer), so that a few bytes starting "GIF89a" are found damaged by the
    decoder rather than too large by their would-be size."""
    if len(data) < 13:
        return None
    table = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    if len(data) <= 13 + table or data[13 + table] not in (0x2C, 0x21, 0x3B):
        return None
    return struct.unpack("<HH", data[6:10])


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, always the first chunk."""
    return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None


def bmp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a BMP's info header."""
    if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 header: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # negative height means rows stored top-down


def check_pixels(name: str, size: tuple[int, int], max_pixels: int) -> None:
    """Raise :class:`ImageTooLargeError` if ``size`` (width, height) has more than ``max_pixels``."""
    width, height = size
    if width * height > max_pixels:
        pixels = f"{width}x{height} = {width * height:,} pixels"
        message = read_error(name, f"too large: {pixels}, over the limit of {max_pixels:,} (max_pixels)")
        raise ImageTooLargeError(str(message), size=(width, height), limit=max_pixels)


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def pillow_limit_lifted(pixels: int):
    """Let Pillow open an image whose size :func:`read_image` has already checked.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (89 MP) and refuses above twice that, a
    module-wide setting that may be below the caller's ``max_pixels``. Only for such images
    is it lifted, and only while the header is parsed (Pillow checks nothing when decoding
    these formats). Every lift holds the lock for its whole window, so a None seen outside
    the lock may be another read's lift: the true value is read again under the lock.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels <= limit:
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _split_transparency(array: np.ndarray, key) -> np.ndarray:
    """Alpha from a tRNS-style key colour: transparent where every channel equals the key."""
    key = np.asarray(key if isinstance(key, tuple) else (key,), dtype=np.int64)
    match = np.all(array.astype(np.int64) == key[: array.shape[2]], axis=2)
    return np.where(match, 0, peak_value(array.dtype)).astype(array.dtype)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    if icc:
        try:
            srgb = ImageCms.createProfile("sRGB")
            rgb = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB")
            return rgb, ImageCms.ImageCmsProfile(srgb).tobytes()
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or non-CMYK profile: the plain formula below beats refusing the file
    # Pillow's formula, R = (255 - C)(255 - K) / 255, and no profile: the result is taken as sRGB.
    return im.convert("RGB"), None


def _pillow_arrays(im: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """(pixels (H, W, C), alpha or None, ICC profile) of a loaded Pillow image in any mode."""
    icc = im.info.get("icc_profile") or None
    key = im.info.get("transparency")
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or key is not None or im.palette.mode == "RGBA" else "RGB")
        mode, key = im.mode, None
    elif mode == "CMYK":
        (im, icc), mode = _cmyk_to_rgb(im, icc), "RGB"
    elif mode in ("RGBa", "La"):  # premultiplied alpha (TIFF): Pillow un-premultiplies
        im = im.convert(mode[:-1] + "A")
        mode = im.mode
    elif mode in ("RGBX", "YCbCr", "HSV"):
        im, mode = im.convert("RGB"), "RGB"
    elif mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I"):
        if mode == "F":
            raise read_error(name, "32-bit float samples are not supported (save it as 8- or 16-bit)")
        raise read_error(name, f"unsupported pixel mode {mode}")

    array = np.asarray(im)
    if mode.startswith("I"):
        if mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
            raise read_error(name, "32-bit integer samples are not supported (save it as 8- or 16-bit)")
        array = array.astype(np.uint16)  # also makes big-endian I;16B native
    if array.ndim == 2:
        array = array[..., None]
    if mode in ("LA", "RGBA"):
        return np.ascontiguousarray(array[..., :-1]), np.ascontiguousarray(array[..., -1]), icc
    alpha = _split_transparency(array, key) if key is not None and not isinstance(key, bytes) else None
    return np.ascontiguousarray(array), alpha, icc


def _exif_from_pillow(im: Image.Image, fmt: str) -> Image.Exif | None:
    try:
        exif = im.getexif()
        if fmt == "TIFF":  # a TIFF's "EXIF" is its own tag directory, layout tags included
            kept = Image.Exif()
            for tag in (ORIENTATION_TAG, *_TIFF_DESCRIPTIVE_TAGS):
                if tag in exif:
                    kept[tag] = exif[tag]
            exif = kept
        return exif
    except DECODE_ERRORS + (TypeError,):
        return None  # damaged metadata should not make the picture unreadable


def read_pillow(data: bytes, name: str, fmt: str, size: tuple[int, int] | None, max_pixels: int):
    """Read ``data`` in the format ``fmt`` with Pillow; ``size`` is the header's, if measured."""
    try:
        with pillow_limit_lifted(size[0] * size[1] if size else 0):
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        # Only when the header could not be measured above; Pillow's limit then stands.
        limit = 2 * Image.MAX_IMAGE_PIXELS
        message = read_error(name, f"too large: over Pillow's decompression-bomb limit of {limit} pixels")
        raise ImageTooLargeError(str(message), size=None, limit=limit) from None
    except Image.UnidentifiedImageError:
        raise read_error(name, f"damaged {fmt} file (header unreadable)") from None
    except DECODE_ERRORS as e:
        raise read_error(name, f"damaged {fmt} file ({e})") from None
    with im:
        check_pixels(name, im.size, max_pixels)
        try:
            im.load()
            pixels, alpha, icc = _pillow_arrays(im, name)
        except DECODE_ERRORS as e:
            raise read_error(name, f"damaged or truncated {fmt} file ({e})") from None
        exif = _exif_from_pillow(im, fmt)
    return pixels, alpha, icc, exif


def read_animated(data: bytes, name: str, fmt: str, size: tuple[int, int] | None, max_pixels: int):
    """Read a GIF or WebP, still or animated, with Pillow. A still one reads as
    :func:`read_pillow` reads it; an animated one gives its first frame and, as a fifth
    item, an :class:`Animation` of the others (each the whole canvas as it shows, Pillow
    having applied the disposal and blending), their durations, loop count and, for GIF,
    disposal methods. ``max_pixels`` bounds the pixels of all frames together, checked
    frame by frame before each is decoded (a GIF of 10,000 frames is a bomb too).
    """
    try:
        with pillow_limit_lifted(size[0] * size[1] if size else 0):
            im = Image.open(io.BytesIO(data), formats=[fmt])
            frames = getattr(im, "n_frames", 1)
    except Image.UnidentifiedImageError:
        raise read_error(name, f"damaged {fmt} file (header unreadable)") from None
    except DECODE_ERRORS as e:
        raise read_error(name, f"damaged {fmt} file ({e})") from None
    if frames <= 1:
        im.close()
        return read_pillow(data, name, fmt, size, max_pixels)
    with im:
        width, height = im.size
        check_pixels(name, (width, height), max_pixels)
        if width * height * frames > max_pixels:
            message = read_error(
                name, f"too large: {frames} frames of {width}x{height} = {width * height * frames:,} pixels, "
                f"over the limit of {max_pixels:,} (max_pixels)",
            )
            raise ImageTooLargeError(str(message), size=(width, height), limit=max_pixels)
        rgba, durations, disposals = [], [], []
        try:
            for index in range(frames):
                im.seek(index)
                im.load()
                durations.append(int(im.info.get("duration") or 0))
                if fmt == "GIF":
                    disposals.append(int(getattr(im, "disposal_method", 0) or 0))
                rgba.append(np.asarray(im.convert("RGBA")))
            im.seek(0)
            icc = im.info.get("icc_profile") or None
            loop = im.info.get("loop")
            exif = _exif_from_pillow(im, fmt)
        except DECODE_ERRORS as e:
            raise read_error(name, f"damaged or truncated {fmt} file ({e})") from None
    # Alpha for every frame or none, so that all frames have one shape and one encoder path.
    transparent = any(bool((frame[..., 3] < 255).any()) for frame in rgba)
    stills = [
        ImageData(pixels=np.ascontiguousarray(f[..., :3]), alpha=np.ascontiguousarray(f[..., 3]) if transparent else None)
        for f in rgba
    ]
    animation = Animation(frames=stills[1:], durations=durations, loop=None if loop is None else int(loop), disposals=disposals)
    return stills[0].pixels, stills[0].alpha, icc, exif, animation


def _png_metadata(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(ICC profile, raw eXIf) from the chunk list of a PNG, without decoding pixels."""
    icc, exif = None, None
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"iCCP" and b"\x00" in body:
            compressed = body[body.index(b"\x00") + 2 :]  # name, NUL, method byte
            try:
                # Capped: a few kB of zlib can claim gigabytes.
                icc = zlib.decompressobj().decompress(compressed, _MAX_ICC_BYTES) or None
            except zlib.error:
                icc = None
        elif kind == b"eXIf":
            exif = body
        elif kind == b"IEND":
            break
        pos += 12 + length
    return icc, exif


def _read_png16(data: bytes, name: str, icc: bytes | None, raw_exif: bytes | None):
    try:
        array = imagecodecs.png_decode(data)  # tRNS, if any, arrives as an extra alpha channel
    except DECODE_ERRORS as e:
        raise read_error(name, f"damaged or truncated PNG file ({e})") from None
    if array.ndim == 2:
        array = array[..., None]
    colour_type = data[25]
    channels = 3 if colour_type in (2, 6) else 1
    alpha = np.ascontiguousarray(array[..., channels]) if array.shape[2] > channels else None
    exif = None
    if raw_exif:
        with contextlib.suppress(*DECODE_ERRORS, TypeError):
            exif = Image.Exif()
            exif.load(raw_exif)
    return np.ascontiguousarray(array[..., :channels]), alpha, icc, exif


def read_png(data: bytes, name: str, fmt: str, size: tuple[int, int] | None, max_pixels: int):
    """Read a PNG: 16-bit ones with imagecodecs (Pillow would reduce them to 8 bits)."""
    if data[24:25] == b"\x10":  # IHDR bit depth 16 (IHDR is always the first chunk)
        return _read_png16(data, name, *_png_metadata(data))
    return read_pillow(data, name, fmt, size, max_pixels)


def _read_tifffile(name: str, page) -> tuple:
    """Pixels of a TIFF page that Pillow would reduce to 8 bits (or cannot open: BigTIFF)."""
    photometric = int(page.photometric)
    if photometric not in (0, 1, 2):  # min-is-white, min-is-black, RGB
        kind = getattr(page.photometric, "name", str(photometric))
        raise read_error(name, f"unsupported {page.bitspersample}-bit {kind} TIFF (convert it to RGB or grayscale)")
    array = page.asarray()
    if array.dtype not in (np.uint8, np.uint16):
        raise read_error(name, f"unsupported TIFF samples ({array.dtype}; superres reads 8- and 16-bit integers)")
    if page.axes.startswith("S"):  # planar configuration: one plane per sample
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    channels = 3 if photometric == 2 else 1
    pixels = array[..., :channels]
    if photometric == 0:
        pixels = peak_value(pixels.dtype) - pixels
    alpha = None
    extra = [int(x) for x in page.extrasamples]
    if extra and extra[0] in (1, 2) and array.shape[2] > channels:  # associated, unassociated alpha
        alpha = array[..., channels]
        if extra[0] == 1:  # premultiplied: divide it out, as Pillow does for 8-bit files
            a = alpha.astype(np.float64)[..., None]
            straight = np.where(a > 0, pixels / np.maximum(a, 1) * peak_value(alpha.dtype), 0)
            pixels = np.clip(np.rint(straight), 0, peak_value(alpha.dtype)).astype(alpha.dtype)
        alpha = np.ascontiguousarray(alpha)
    tags = page.tags
    icc = bytes(tags[ICC_TAG].value) if ICC_TAG in tags else None
    exif = Image.Exif()
    for tag in (ORIENTATION_TAG, *_TIFF_DESCRIPTIVE_TAGS):
        if tag in tags:
            value = tags[tag].value
            exif[tag] = int(value) if tag == ORIENTATION_TAG else value
    return np.ascontiguousarray(pixels), alpha, icc, exif


def read_tiff(data: bytes, name: str, fmt: str, size: tuple[int, int] | None, max_pixels: int):
    """Read a TIFF, measured by tifffile: 16-bit and BigTIFF with tifffile, others with Pillow."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            size = (page.imagewidth, page.imagelength)
            check_pixels(name, size, max_pixels)
            if page.bitspersample > 8 or tif.is_bigtiff:
                return _read_tifffile(name, page)
    except ImageReadError:
        raise
    except (tifffile.TiffFileError, *DECODE_ERRORS) as e:
        raise read_error(name, f"damaged or truncated TIFF file ({e})") from None
    return read_pillow(data, name, fmt, size, max_pixels)


def finish(pixels, alpha, icc, exif: Image.Exif | None, fmt: str, animation: Animation | None = None) -> ImageData:
    """A reader's result as an :class:`ImageData`, the EXIF orientation applied to the pixels
    (of every frame of an ``animation``)."""
    exif_bytes = None
    if exif is not None:
        orientation = exif.get(ORIENTATION_TAG, 1)
        if orientation in range(2, 9):
            pixels = _orient(pixels, orientation)
            alpha = None if alpha is None else _orient(alpha, orientation)
            if animation is not None:
                turned = [
                    ImageData(pixels=_orient(f.pixels, orientation), alpha=None if f.alpha is None else _orient(f.alpha, orientation))
                    for f in animation.frames
                ]
                animation = animation.replace_frames(turned)
        if ORIENTATION_TAG in exif:
            del exif[ORIENTATION_TAG]
        if len(exif):
            with contextlib.suppress(*DECODE_ERRORS, TypeError):
                exif_bytes = exif.tobytes()
    return ImageData(pixels=pixels, alpha=alpha, icc_profile=icc or None, exif=exif_bytes, format=fmt, animation=animation)
