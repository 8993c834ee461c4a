"""Reading and writing images: PNG, JPEG, WebP, TIFF and BMP, 8- and 16-bit, alpha kept apart.

Every read returns an :class:`ImageData`: colour as (H, W, 1) or (H, W, 3) uint8/uint16,
alpha as a separate (H, W) plane, the ICC profile carried (not applied), and the EXIF
orientation already applied to the pixels. Palette images become RGB(A), CMYK becomes RGB
(through its ICC profile when it has one), 1-bit becomes 0/255 grayscale.

Pillow decodes most files. It reduces 16-bit-per-channel colour and grey+alpha PNG and TIFF
to 8 bits (Pillow 13 still does), so 16-bit PNG goes through imagecodecs (libpng) and
16-bit TIFF through tifffile; both keep every bit.

Reads are built for untrusted input (web uploads): only these five formats are tried, the
pixel count is read from the file header and checked against ``max_pixels`` before anything
is decoded, and every failure is an :class:`ImageReadError` with a one-line reason. Writes
are atomic: the file appears complete under its name or not at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile
from PIL import Image, ImageCms

from superres.atomic import write_atomic
from superres.errors import SuperresError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "encode_image",
    "from_float",
    "read_image",
    "to_float",
    "write_image",
]

#: Largest image :func:`read_image` decodes unless told otherwise: 200 megapixels, about
#: 600 MB as 8-bit RGB and several GB once a model works on it in float32.
DEFAULT_MAX_PIXELS = 200_000_000

_FORMAT_BY_EXTENSION = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

#: Lower-case file extensions, with the dot, that :func:`read_image` and :func:`write_image` handle.
IMAGE_EXTENSIONS = frozenset(_FORMAT_BY_EXTENSION)

_FORMAT_NAMES = {name: name for name in ("PNG", "JPEG", "WEBP", "TIFF", "BMP")} | {"JPG": "JPEG", "TIF": "TIFF"}
_SUPPORTED = "PNG, JPEG, WebP, TIFF or BMP"

# Magic numbers of formats people upload that we do not read, so the error can name them.
_OTHER_FORMATS = (
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"\x00\x00\x01\x00", "ICO"),
)

_ORIENTATION = 0x0112
# Of a TIFF's own tags, the ones that describe the picture rather than lay out its bytes:
# only these are worth carrying as EXIF into another format.
# ImageDescription, Make, Model, Software, DateTime, Artist, Copyright.
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_ICC_TAG = 34675
_MAX_ICC_BYTES = 64 << 20

# What decoders raise on damaged data: Pillow (OSError, SyntaxError, ValueError, EOFError),
# imagecodecs (RuntimeError subclasses), tifffile (TiffFileError, a ValueError), zlib, struct.
_DECODE_ERRORS = (
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


class ImageWriteError(SuperresError):
    """An image could not be written or encoded; the message names the file and the reason."""


@dataclass(eq=False)  # field-wise == on arrays is ambiguous; compare .pixels explicitly
class ImageData:
    """A decoded image: colour and alpha apart, plus the metadata worth carrying to the output.

    ``pixels`` is (H, W, 1) for grayscale or (H, W, 3) for RGB, uint8 or uint16; ``alpha`` is
    (H, W) of the same dtype, or None. ``exif`` is the EXIF block as Pillow's
    ``Exif.tobytes()`` writes it (``b"Exif\\0\\0"`` then a TIFF structure), without the
    orientation tag: the orientation has already been applied to the pixels. ``format`` is
    the source's format ("PNG", "JPEG", "WEBP", "TIFF", "BMP"), None for an image made in memory.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        pixels = self.pixels
        if not isinstance(pixels, np.ndarray) or pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            shape = getattr(pixels, "shape", type(pixels).__name__)
            raise ValueError(f"pixels must be an (H, W, 1) or (H, W, 3) array, got {shape}")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
        if self.alpha is not None:
            if not isinstance(self.alpha, np.ndarray) or self.alpha.shape != pixels.shape[:2]:
                shape = getattr(self.alpha, "shape", type(self.alpha).__name__)
                raise ValueError(f"alpha must be an (H, W) array matching pixels {pixels.shape[:2]}, got {shape}")
            if self.alpha.dtype != pixels.dtype:
                raise ValueError(f"alpha dtype {self.alpha.dtype} differs from pixels dtype {pixels.dtype}")

    def __repr__(self) -> str:
        h, w, c = self.pixels.shape
        parts = [f"{h}x{w}x{c} {self.pixels.dtype}", f"alpha={'yes' if self.alpha is not None else 'no'}"]
        parts += [f"icc={len(self.icc_profile) if self.icc_profile else 0} B"]
        parts += [f"exif={len(self.exif) if self.exif else 0} B", f"format={self.format!r}"]
        return f"ImageData({', '.join(parts)})"

    @property
    def bit_depth(self) -> int:
        """Bits per sample: 8 or 16."""
        return 8 if self.pixels.dtype == np.uint8 else 16

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.pixels.shape[0], self.pixels.shape[1]


# --------------------------------------------------------------------------- conversions


def _peak(dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise ValueError(f"expected uint8 or uint16 pixels, got {dtype}")


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels to float32 in [0, 1]: ``x / 255`` or ``x / 65535``."""
    return pixels.astype(np.float32) / np.float32(_peak(pixels.dtype))


def from_float(pixels: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    """Float pixels in [0, 1] to ``dtype`` (uint8 or uint16): ``round(clip(x, 0, 1) * peak)``.

    Rounds half to even; NaN becomes 0. The inverse of :func:`to_float` for every integer value.
    """
    dtype = np.dtype(dtype)
    peak = _peak(dtype)
    values = np.asarray(pixels)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    # float32 is exact enough: its spacing near 65535 is 1/256, far from a rounding boundary.
    scaled = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * values.dtype.type(peak)
    return np.rint(scaled).astype(dtype)


def _to_8bit(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    # round(x / 257) in integers: exact, and the inverse of the x * 257 that widens 8 to 16 bits.
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _composite_on_white(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    peak = _peak(pixels.dtype)
    a = alpha.astype(np.int64)[..., None]
    out = (pixels.astype(np.int64) * a + peak * (peak - a) + peak // 2) // peak
    return out.astype(pixels.dtype)


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
        if _ORIENTATION not in parsed:
            return exif
        del parsed[_ORIENTATION]
        return parsed.tobytes() if len(parsed) else None
    except _DECODE_ERRORS + (TypeError,):
        # Unparseable EXIF is dropped rather than copied: its orientation cannot be removed.
        return None


# --------------------------------------------------------------------------- reading


def _read_error(name: str, reason: str) -> ImageReadError:
    return ImageReadError(f"cannot read '{name}': {' '.join(str(reason).split())}")


def _load_source(source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name if name is not None else "<upload>"
    label = name if name is not None else os.fspath(source)
    try:
        return Path(source).read_bytes(), label
    except FileNotFoundError:
        raise _read_error(label, "no such file") from None
    except IsADirectoryError:
        raise _read_error(label, "is a folder, not an image file") from None
    except PermissionError:
        raise _read_error(label, "permission denied") from None
    except OSError as e:
        raise _read_error(label, e.strerror or str(e)) from None


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def _not_ours(data: bytes) -> str:
    for magic, label in _OTHER_FORMATS:
        if data.startswith(magic):
            return f"unsupported format {label} (superres reads {_SUPPORTED})"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return f"unsupported format {'AVIF' if data[8:11] == b'avi' else 'HEIF'} (superres reads {_SUPPORTED})"
    return f"not an image (first bytes 0x{data[:8].hex()}...)"


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
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


def _webp_size(data: bytes) -> tuple[int, int] | None:
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


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, WebP or BMP; None if it cannot tell."""
    try:
        if fmt == "PNG":
            return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None
        if fmt == "BMP":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 header: 16-bit sizes
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)  # negative height means rows stored top-down
        if fmt == "JPEG":
            return _jpeg_size(data)
        if fmt == "WEBP":
            return _webp_size(data)
    except struct.error:
        return None
    return None


def _check_pixels(name: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        pixels = f"{width}x{height} = {width * height:,} pixels"
        message = _read_error(name, f"too large: {pixels}, over the limit of {max_pixels:,} (max_pixels)")
        raise ImageTooLargeError(str(message), size=(width, height), limit=max_pixels)


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_limit_lifted(pixels: int):
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
    return np.where(match, 0, _peak(array.dtype)).astype(array.dtype)


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
            raise _read_error(name, "32-bit float samples are not supported (save it as 8- or 16-bit)")
        raise _read_error(name, f"unsupported pixel mode {mode}")

    array = np.asarray(im)
    if mode.startswith("I"):
        if mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
            raise _read_error(name, "32-bit integer samples are not supported (save it as 8- or 16-bit)")
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
            for tag in (_ORIENTATION, *_TIFF_DESCRIPTIVE_TAGS):
                if tag in exif:
                    kept[tag] = exif[tag]
            exif = kept
        return exif
    except _DECODE_ERRORS + (TypeError,):
        return None  # damaged metadata should not make the picture unreadable


def _read_pillow(data: bytes, name: str, fmt: str, size, max_pixels: int):
    try:
        with _pillow_limit_lifted(size[0] * size[1] if size else 0):
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        # Only when the header could not be measured above; Pillow's limit then stands.
        limit = 2 * Image.MAX_IMAGE_PIXELS
        message = _read_error(name, f"too large: over Pillow's decompression-bomb limit of {limit} pixels")
        raise ImageTooLargeError(str(message), size=None, limit=limit) from None
    except Image.UnidentifiedImageError:
        raise _read_error(name, f"damaged {fmt} file (header unreadable)") from None
    except _DECODE_ERRORS as e:
        raise _read_error(name, f"damaged {fmt} file ({e})") from None
    with im:
        _check_pixels(name, im.size, max_pixels)
        try:
            im.load()
            pixels, alpha, icc = _pillow_arrays(im, name)
        except _DECODE_ERRORS as e:
            raise _read_error(name, f"damaged or truncated {fmt} file ({e})") from None
        exif = _exif_from_pillow(im, fmt)
    return pixels, alpha, icc, exif


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
    except _DECODE_ERRORS as e:
        raise _read_error(name, f"damaged or truncated PNG file ({e})") from None
    if array.ndim == 2:
        array = array[..., None]
    colour_type = data[25]
    channels = 3 if colour_type in (2, 6) else 1
    alpha = np.ascontiguousarray(array[..., channels]) if array.shape[2] > channels else None
    exif = None
    if raw_exif:
        with contextlib.suppress(*_DECODE_ERRORS, TypeError):
            exif = Image.Exif()
            exif.load(raw_exif)
    return np.ascontiguousarray(array[..., :channels]), alpha, icc, exif


def _read_tifffile(name: str, page) -> tuple:
    """Pixels of a TIFF page that Pillow would reduce to 8 bits (or cannot open: BigTIFF)."""
    photometric = int(page.photometric)
    if photometric not in (0, 1, 2):  # min-is-white, min-is-black, RGB
        kind = getattr(page.photometric, "name", str(photometric))
        raise _read_error(name, f"unsupported {page.bitspersample}-bit {kind} TIFF (convert it to RGB or grayscale)")
    array = page.asarray()
    if array.dtype not in (np.uint8, np.uint16):
        raise _read_error(name, f"unsupported TIFF samples ({array.dtype}; superres reads 8- and 16-bit integers)")
    if page.axes.startswith("S"):  # planar configuration: one plane per sample
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    channels = 3 if photometric == 2 else 1
    pixels = array[..., :channels]
    if photometric == 0:
        pixels = _peak(pixels.dtype) - pixels
    alpha = None
    extra = [int(x) for x in page.extrasamples]
    if extra and extra[0] in (1, 2) and array.shape[2] > channels:  # associated, unassociated alpha
        alpha = array[..., channels]
        if extra[0] == 1:  # premultiplied: divide it out, as Pillow does for 8-bit files
            a = alpha.astype(np.float64)[..., None]
            straight = np.where(a > 0, pixels / np.maximum(a, 1) * _peak(alpha.dtype), 0)
            pixels = np.clip(np.rint(straight), 0, _peak(alpha.dtype)).astype(alpha.dtype)
        alpha = np.ascontiguousarray(alpha)
    tags = page.tags
    icc = bytes(tags[_ICC_TAG].value) if _ICC_TAG in tags else None
    exif = Image.Exif()
    for tag in (_ORIENTATION, *_TIFF_DESCRIPTIVE_TAGS):
        if tag in tags:
            value = tags[tag].value
            exif[tag] = int(value) if tag == _ORIENTATION else value
    return np.ascontiguousarray(pixels), alpha, icc, exif


def _finish(pixels, alpha, icc, exif: Image.Exif | None, fmt: str) -> ImageData:
    exif_bytes = None
    if exif is not None:
        orientation = exif.get(_ORIENTATION, 1)
        if orientation in range(2, 9):
            pixels = _orient(pixels, orientation)
            alpha = None if alpha is None else _orient(alpha, orientation)
        if _ORIENTATION in exif:
            del exif[_ORIENTATION]
        if len(exif):
            with contextlib.suppress(*_DECODE_ERRORS, TypeError):
                exif_bytes = exif.tobytes()
    return ImageData(pixels=pixels, alpha=alpha, icc_profile=icc or None, exif=exif_bytes, format=fmt)


def read_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageData:
    """Read a PNG, JPEG, WebP, TIFF or BMP file (a path, or its bytes for uploads).

    The format is found from the content, not the name. 8- and 16-bit samples are kept as
    uint8 and uint16; grayscale stays (H, W, 1). Alpha (RGBA, LA, palette or key-colour
    transparency) is returned apart from the colour, straight (not premultiplied). Palette
    images become RGB; CMYK becomes RGB through its ICC profile (which is then replaced by
    sRGB's) or, without one, by Pillow's plain formula. The EXIF orientation is applied to
    the pixels and removed from the EXIF. Multi-frame files give their first frame.

    ``name`` labels the image in error messages (default: the path; for bytes, "<upload>").
    Images of more than ``max_pixels`` pixels are refused from their header, before any
    decoding. Every failure (missing, empty, damaged, truncated, not an image, too large)
    raises :class:`ImageReadError` with a one-line reason; too large is its subclass
    :class:`ImageTooLargeError`.
    """
    data, label = _load_source(source, name)
    if not data:
        raise _read_error(label, "empty file (0 bytes)")
    fmt = _sniff(data)
    if fmt is None:
        raise _read_error(label, _not_ours(data))

    if fmt == "TIFF":
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages[0]
                size = (page.imagewidth, page.imagelength)
                _check_pixels(label, size, max_pixels)
                if page.bitspersample > 8 or tif.is_bigtiff:
                    return _finish(*_read_tifffile(label, page), fmt)
        except ImageReadError:
            raise
        except (tifffile.TiffFileError, *_DECODE_ERRORS) as e:
            raise _read_error(label, f"damaged or truncated TIFF file ({e})") from None
        return _finish(*_read_pillow(data, label, fmt, size, max_pixels), fmt)

    size = _header_size(data, fmt)
    if size is not None:
        _check_pixels(label, size, max_pixels)
    if fmt == "PNG" and data[24:25] == b"\x10":  # IHDR bit depth 16 (IHDR is always the first chunk)
        return _finish(*_read_png16(data, label, *_png_metadata(data)), fmt)
    return _finish(*_read_pillow(data, label, fmt, size, max_pixels), fmt)


# --------------------------------------------------------------------------- writing


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


def _encode_png(image: ImageData, icc, exif, quality: int) -> bytes:
    if image.bit_depth == 8:
        return _pillow_save(image.pixels, image.alpha, "PNG", icc_profile=icc, exif=exif)
    png = imagecodecs.png_encode(_samples(image.pixels, image.alpha), level=6)
    # imagecodecs writes no metadata: add the profile and EXIF right after IHDR (8 + 25 bytes),
    # where the PNG spec wants iCCP (before IDAT) and where readers look for eXIf.
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    return png[:33] + extra + png[33:]


def _encode_jpeg(image: ImageData, icc, exif, quality: int) -> bytes:
    pixels = image.pixels if image.alpha is None else _composite_on_white(image.pixels, image.alpha)
    # Chroma at full resolution when high quality is asked for: 4:2:0 blurs the colour edges
    # that super-resolution just sharpened.
    subsampling = 0 if quality >= 90 else 2  # 4:4:4 or 4:2:0
    return _pillow_save(
        _to_8bit(pixels), None, "JPEG", quality=quality, subsampling=subsampling, icc_profile=icc, exif=exif
    )


def _encode_webp(image: ImageData, icc, exif, quality: int) -> bytes:
    pixels = image.pixels if image.pixels.shape[2] == 3 else np.repeat(image.pixels, 3, axis=2)  # WebP has no grey
    alpha = None if image.alpha is None else _to_8bit(image.alpha)
    return _pillow_save(
        _to_8bit(pixels),
        alpha,
        "WEBP",
        quality=quality,
        lossless=quality == 100,
        exact=True,  # keep the colour under transparent pixels, which lossless WebP would otherwise zero
        icc_profile=_icc_matching(icc, 3),
        exif=exif.removeprefix(b"Exif\x00\x00") if exif else None,  # the WebP EXIF chunk holds bare TIFF data
    )


def _encode_tiff(image: ImageData, icc, exif, quality: int) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        _samples(image.pixels, image.alpha),
        photometric="rgb" if image.pixels.shape[2] == 3 else "minisblack",
        extrasamples=("unassalpha",) if image.alpha is not None else None,
        compression="zlib",
        metadata=None,  # no tifffile JSON in ImageDescription
        software=False,
        extratags=[(_ICC_TAG, 7, len(icc), icc, True)] if icc else None,
    )
    return buffer.getvalue()


def _encode_bmp(image: ImageData, icc, exif, quality: int) -> bytes:
    # Pillow writes a 32-bit BMP's fourth byte but reads it back as padding, so alpha is
    # composited on white here rather than kept in a form nobody will see.
    pixels = image.pixels if image.alpha is None else _composite_on_white(image.pixels, image.alpha)
    return _pillow_save(_to_8bit(pixels), None, "BMP")


_ENCODERS = {"PNG": _encode_png, "JPEG": _encode_jpeg, "WEBP": _encode_webp, "TIFF": _encode_tiff, "BMP": _encode_bmp}


def _encode(image: ImageData, fmt: str, quality: int) -> bytes:
    """Bytes of ``image`` in ``fmt``; raises ValueError or OSError with a one-line reason."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    channels = image.pixels.shape[2]
    icc = _icc_matching(image.icc_profile, channels)
    exif = _exif_without_orientation(image.exif)
    return _ENCODERS[fmt](image, icc, exif, int(quality))


def encode_image(image: ImageData, format: str = "PNG", *, quality: int = 95) -> bytes:
    """The file bytes of ``image`` as PNG, JPEG, WebP, TIFF or BMP (``format``, any case).

    What each format keeps is as in :func:`write_image`. Raises :class:`ImageWriteError`
    for an unknown format, a quality outside 1-100, or an encoder failure.
    """
    fmt = _FORMAT_NAMES.get(str(format).upper())
    if fmt is None:
        raise ImageWriteError(f"cannot encode image as '{format}': unsupported format (use {_SUPPORTED})")
    try:
        return _encode(image, fmt, quality)
    except (ValueError, OSError, RuntimeError) as e:
        raise ImageWriteError(f"cannot encode image as {fmt}: {' '.join(str(e).split())}") from None


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

    An EXIF orientation tag is never written: pixels are always stored upright. An ICC
    profile whose colour space does not match the pixels (grey vs RGB) is left out.
    """
    path = Path(path)
    fmt = _FORMAT_BY_EXTENSION.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(
            f"cannot write '{path}': unknown extension '{path.suffix}' (use {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if not path.parent.is_dir():
        raise ImageWriteError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    try:
        write_atomic(path, _encode(image, fmt, quality))
    except (ValueError, OSError, RuntimeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageWriteError(f"cannot write '{path}': {' '.join(reason.split())}") from None
    return path
