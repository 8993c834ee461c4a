"""The choices a user makes and their defaults, in one table that imports nothing heavy.

The command line builds its ``--help`` from this module, the batch walker names its outputs
from it, the web app declares its form fields and media types from it, and the modules that
act on a choice (the Upscaler, the image readers and writers, sizing) check against it. It
imports neither PyTorch nor any other part of superres, so that ``superres --help`` (and
anything else that only needs to know the choices) starts in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BACKENDS", "DEFAULT_MODEL", "DEFAULT_PHOTO_MODEL", "DEFAULT_SCALE", "DEFAULT_TILE_OVERLAP", "FITS", "FileFormat", "IMAGE_EXTENSIONS",
    "IMAGE_FORMATS", "OUTPUT_FORMATS", "PNG_SUFFIX", "PRECISIONS", "TIFF_EXTENSIONS", "WEB_FORMATS", "image_format",
]

#: The flagship model: ``superres.load()``'s and ``superres explain``'s default, and the model
#: ``auto`` gives clean pictures.
DEFAULT_MODEL = "swiftrep"
#: What ``superres upscale`` and the web app run when no model is named: per photo, the
#: fidelity model that suits it (:mod:`superres.inference.autopick`). On Set14 x4 it gives up
#: 0.06 dB to the flagship on clean inputs and gains 0.4-0.7 dB on everyday JPEGs and noise
#: (docs/REALWORLD.md, "-m auto"). The Python API keeps the flagship, so that a script's
#: results do not change with the picture's statistics unless it asks for "auto".
DEFAULT_PHOTO_MODEL = "auto"
#: The upscaling factor when none is asked for.
DEFAULT_SCALE = 4

#: What a model runs in: "auto" (fp16 on CUDA; bf16 on a CPU measured fast at it, for weights
#: it changes by 0.01 dB or less; else fp32), or one of the three asked for by name.
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: What runs a model: PyTorch, ONNX Runtime, ONNX Runtime on a shipped int8 graph, or OpenVINO
#: on the CPU (the openvino extra).
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")
#: How a width and height of another aspect ratio than the input's are met (:mod:`superres.inference.sizing`).
FITS = ("cover", "contain", "stretch")
#: LR pixels shared by neighbouring tiles (:class:`superres.inference.Upscaler`).
DEFAULT_TILE_OVERLAP = 32


@dataclass(frozen=True)
class FileFormat:
    """An image file format: its name (as ``ImageData.format`` and ``encode_image`` take it),
    its name in messages, its file extensions (lower case, with the dot; the first is the one
    written), its media type, and the largest side its encoder writes (None: no limit below
    the pixel limits)."""

    name: str
    label: str
    extensions: tuple[str, ...]
    media_type: str
    max_side: int | None = None

    @property
    def suffix(self) -> str:
        """The extension a file of this format is written with."""
        return self.extensions[0]


#: Every image format superres reads and writes (:mod:`superres.imaging.io` adds each one's
#: reader and encoder). The largest sides: WebP's 14-bit sizes, libjpeg's JPEG_MAX_DIMENSION,
#: GIF's 16 bits; a result over one is refused before the upscale, not failed after it.
IMAGE_FORMATS = (
    FileFormat("PNG", "PNG", (".png",), "image/png"),
    FileFormat("JPEG", "JPEG", (".jpg", ".jpeg"), "image/jpeg", 65500),
    FileFormat("WEBP", "WebP", (".webp",), "image/webp", 16383),
    FileFormat("TIFF", "TIFF", (".tif", ".tiff"), "image/tiff"),
    FileFormat("BMP", "BMP", (".bmp",), "image/bmp"),
    FileFormat("GIF", "GIF", (".gif",), "image/gif", 65535),
)

_BY_KEY = {f.name: f for f in IMAGE_FORMATS} | {e[1:].upper(): f for f in IMAGE_FORMATS for e in f.extensions}


def image_format(key: str) -> FileFormat | None:
    """The format named ``key``: its name or one of its extensions, with or without the dot,
    in any case ("PNG", "jpg", ".TIF"); None for a format superres does not handle."""
    return _BY_KEY.get(str(key).lstrip(".").upper())


def _format(name: str) -> FileFormat:
    found = image_format(name)
    assert found is not None, name
    return found


#: Lower-case file extensions, with the dot, that superres reads and writes as images.
IMAGE_EXTENSIONS = frozenset(e for f in IMAGE_FORMATS for e in f.extensions)
#: A TIFF's extensions (a GeoTIFF is one of these with geo tags).
TIFF_EXTENSIONS = _format("TIFF").extensions
#: The extension of PNG, the format results and pictures are written in when none is asked for.
PNG_SUFFIX = _format("PNG").suffix
#: ``upscale --format`` choices (any extension without its dot) and the extension each writes.
OUTPUT_FORMATS = {e[1:]: f.suffix for f in IMAGE_FORMATS for e in f.extensions}
#: The formats the web app returns: those a browser shows.
WEB_FORMATS = ("png", "jpeg", "webp", "gif")
