"""A JPEG's quality, read from its quantisation tables: how hard it was compressed.

Encoders built on the IJG library (libjpeg, libjpeg-turbo, mozjpeg's defaults, Pillow,
ImageMagick, most web tools) scale one standard table by the quality Q (JPEG standard,
Annex K.1; IJG ``jpeg_quality_scaling``):

    s = 5000 / Q for Q < 50, s = 200 - 2 Q for Q >= 50
    T_Q[i] = clip(floor((T[i] s + 50) / 100), 1, 255)

So a file's luma table names its Q exactly when it came from such an encoder, and, when it
did not (a camera's or Photoshop's own tables), the Q whose IJG table is nearest (mean
absolute difference over the 64 entries) is the quality it is equivalent to. Only the
header is read, never the pixels: a few microseconds per file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

__all__ = ["IJG_LUMA_TABLE", "JpegQuality", "ijg_table", "quality_from_table", "jpeg_quality"]

#: The standard luminance quantisation table (JPEG Annex K, Table K.1), in natural
#: (row-major) order, as Pillow's ``JpegImageFile.quantization`` gives tables too.
IJG_LUMA_TABLE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int64,
)  # fmt: skip


@dataclass(frozen=True)
class JpegQuality:
    """A JPEG's estimated quality: ``quality`` 1-100 (IJG scale), ``exact`` when its luma
    table is the IJG table of that quality entry for entry, ``error`` the mean absolute
    difference from that table otherwise (0 when exact)."""

    quality: int
    exact: bool
    error: float


def ijg_table(quality: int) -> np.ndarray:
    """The IJG luma table (64 entries, natural order) that libjpeg writes at ``quality`` 1-100
    with baseline tables (entries clipped to 1-255), as Pillow does."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    s = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMA_TABLE * s + 50) // 100, 1, 255)


_TABLES = np.stack([ijg_table(q) for q in range(1, 101)])  # (100, 64), row q-1


def quality_from_table(table) -> JpegQuality:
    """The quality whose IJG luma table is nearest ``table`` (64 entries in natural order).

    Ties go to the highest quality: several low qualities share the all-255 table of
    baseline JPEG, and high ones differ by a unit or two, so the highest is the cautious
    reading (it calls a file no worse than it is)."""
    t = np.asarray(table, dtype=np.int64).reshape(-1)
    if t.size != 64:
        raise ValueError(f"a quantisation table has 64 entries, got {t.size}")
    errors = np.abs(_TABLES - t).mean(axis=1)
    best = int(np.flatnonzero(errors == errors.min())[-1])
    return JpegQuality(best + 1, bool(errors[best] == 0), float(errors[best]))


def jpeg_quality(source) -> JpegQuality | None:
    """The quality of a JPEG given as its bytes, a path, or an open Pillow image; None when
    the source is not a JPEG (or has no luma table).

    The luma table is table 0, as every encoder writes it (a grey JPEG has only that one).
    A Pillow image that is not a ``JpegImageFile`` (a decoded copy, a PNG) carries no tables
    and gives None: its history cannot be read from its header."""
    from PIL import Image

    if isinstance(source, Image.Image):
        tables = getattr(source, "quantization", None)
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if not bytes(source[:3]) == b"\xff\xd8\xff":
                return None
            source = io.BytesIO(bytes(source))
        try:
            with Image.open(source, formats=["JPEG"]) as im:  # reads the header only, never the scan
                tables = dict(im.quantization)
        except (OSError, SyntaxError, ValueError):  # not a JPEG, or a damaged header
            return None
    if not tables or 0 not in tables:
        return None
    return quality_from_table(list(tables[0]))
