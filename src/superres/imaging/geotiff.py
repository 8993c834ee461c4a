"""GeoTIFF rasters in and out, a window at a time (the optional extra ``superres[geo]``: rasterio).

A :class:`GeoRaster` is everything a GeoTIFF says besides its pixels: size, band count and
type, coordinate reference system, geotransform, nodata, tags, band descriptions, colour
interpretation, units, scales and offsets. It travels beside the pixels, which are read and
written by window (:class:`GeoTiffReader`, :class:`GeoTiffWriter`), so that a scene larger
than memory is never whole in it. :func:`upscaled_raster` is the raster of a result ``s``
times larger: the same CRS, origin and bounds, each pixel ``1/s`` of the ground distance.

Output is tiled (512 px blocks) and DEFLATE-compressed (with the horizontal predictor for
integers), or a Cloud-Optimised GeoTIFF (internal overviews, made from the finished file).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from superres.atomic import atomic_path
from superres.errors import SuperresError
from superres.extras import require
from superres.options import TIFF_EXTENSIONS

__all__ = ["GeoRaster", "GeoTiffError", "GeoTiffReader", "GeoTiffWriter", "is_geotiff", "upscaled_raster"]

# GeoTIFF's own tags: ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory.
_GEO_TAGS = (33550, 33922, 34264, 34735)
_BLOCK = 512
# GDAL's block cache holds blocks written but not yet flushed; by default it is 5% of the
# machine's memory. A fixed 256 MB keeps a window-by-window write bounded on any machine
# (GDAL_CACHEMAX in the environment, in MB, replaces it).
_GDAL_CACHE_MB = 256


class GeoTiffError(SuperresError):
    """A GeoTIFF that cannot be read or written; the message is one line."""


def _rasterio():
    return require("rasterio", extra="geo", purpose="GeoTIFF")


def _environment():
    options = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": _GDAL_CACHE_MB}  # a user's own setting wins
    return _rasterio().Env(**options)


def is_geotiff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TIFF whose first image carries GeoTIFF tags (read with tifffile,
    a core dependency, so a GeoTIFF is recognised even without the extra installed)."""
    import tifffile

    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                return False
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            return any(code in tags for code in _GEO_TAGS)
    except Exception:  # a damaged TIFF is not recognised as GeoTIFF; the image reader reports it
        return False


@dataclass(frozen=True)
class GeoRaster:
    """A GeoTIFF's metadata: what is kept, or updated, when its pixels are upscaled."""

    width: int
    height: int
    count: int
    dtype: str  # numpy name: uint8, uint16, int16, float32 ...
    crs: object  # rasterio CRS or None
    transform: object  # affine.Affine: pixel (col, row) corner -> map (x, y)
    nodata: float | None
    tags: dict = field(default_factory=dict)
    band_tags: tuple = ()
    descriptions: tuple = ()
    colorinterp: tuple = ()
    units: tuple = ()
    scales: tuple = ()
    offsets: tuple = ()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units."""
        from rasterio.transform import array_bounds

        return array_bounds(self.height, self.width, self.transform)[0:4]

    def rgb_bands(self) -> tuple[int, int, int] | None:
        """The 1-based indexes of the red, green and blue bands when the file names them
        (colour interpretation or photometric RGB), else None."""
        names = [getattr(c, "name", str(c)) for c in self.colorinterp]
        if all(n in names for n in ("red", "green", "blue")):
            return tuple(names.index(n) + 1 for n in ("red", "green", "blue"))
        return None


def upscaled_raster(raster: GeoRaster, scale: int) -> GeoRaster:
    """``raster`` ``scale`` times larger: the geotransform's pixel size divided by ``scale``,
    its origin and rotation kept, so the bounds and the CRS are the same."""
    from affine import Affine

    return replace(raster, width=raster.width * scale, height=raster.height * scale, transform=raster.transform @ Affine.scale(1 / scale))


class GeoTiffReader:
    """An open GeoTIFF read window by window: ``with GeoTiffReader(path) as src: src.read(...)``."""

    def __init__(self, path: str | os.PathLike):
        rasterio = _rasterio()
        self.path = Path(path)
        self._env = _environment()
        self._env.__enter__()
        try:
            self._ds = rasterio.open(self.path)
        except Exception as exc:
            self._env.__exit__(None, None, None)
            raise GeoTiffError(f"cannot read '{self.path.name}': {' '.join(str(exc).split())[:200]}") from None
        ds = self._ds
        self.raster = GeoRaster(
            width=ds.width, height=ds.height, count=ds.count, dtype=ds.dtypes[0], crs=ds.crs, transform=ds.transform,
            nodata=ds.nodata, tags=ds.tags(), band_tags=tuple(ds.tags(b) for b in ds.indexes), descriptions=ds.descriptions,
            colorinterp=ds.colorinterp, units=ds.units, scales=ds.scales, offsets=ds.offsets,
        )
        if len(set(ds.dtypes)) != 1:
            self.close()
            raise GeoTiffError(f"cannot read '{self.path.name}': its bands differ in type ({', '.join(sorted(set(ds.dtypes)))})")

    def read(self, bands: tuple[int, ...], top: int, left: int, height: int, width: int) -> np.ndarray:
        """(len(bands), height, width) samples of the 1-based ``bands`` in a window."""
        from rasterio.windows import Window

        try:
            return self._ds.read(list(bands), window=Window(left, top, width, height))
        except Exception as exc:
            raise GeoTiffError(f"cannot read '{self.path.name}': {' '.join(str(exc).split())[:200]}") from None

    def valid(self, bands: tuple[int, ...], top: int, left: int, height: int, width: int) -> np.ndarray:
        """(height, width) bool: where every one of ``bands`` has data (not nodata, not masked)."""
        from rasterio.windows import Window

        window = Window(left, top, width, height)
        masks = self._ds.read_masks(list(bands), window=window)
        return np.all(masks > 0, axis=0)

    def band_range(self, band: int) -> tuple[float, float]:
        """(min, max) of a band's valid finite samples, read block by block."""
        low, high = np.inf, -np.inf
        for _, window in self._ds.block_windows(band):
            data = self._ds.read(band, window=window, masked=True)
            values = data.compressed() if np.ma.isMaskedArray(data) else data.ravel()
            values = values[np.isfinite(values)]
            if values.size:
                low, high = min(low, float(values.min())), max(high, float(values.max()))
        return (0.0, 1.0) if low > high else (low, high)

    def close(self) -> None:
        self._ds.close()
        self._env.__exit__(None, None, None)

    def __enter__(self) -> GeoTiffReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GeoTiffWriter:
    """A GeoTIFF of ``raster``'s metadata written window by window to a temporary file beside
    ``path``, renamed into place when the ``with`` block ends without an error (and turned
    into a Cloud-Optimised GeoTIFF first with ``cog``). ``software`` is recorded as the
    TIFF's processing history tag (``TIFFTAG_SOFTWARE``) beside the input's own tags."""

    def __init__(self, path: str | os.PathLike, raster: GeoRaster, *, cog: bool = False, software: str = "superres"):
        self.path = Path(path)
        self.raster = raster
        self.cog = cog
        self.software = software

    def __enter__(self) -> GeoTiffWriter:
        rasterio = _rasterio()
        r = self.raster
        integer = np.issubdtype(np.dtype(r.dtype), np.integer)
        profile = dict(
            driver="GTiff", width=r.width, height=r.height, count=r.count, dtype=r.dtype, crs=r.crs, transform=r.transform,
            nodata=r.nodata, tiled=True, blockxsize=_BLOCK, blockysize=_BLOCK, compress="deflate",
            predictor=2 if integer else 3, bigtiff="IF_SAFER", interleave="pixel" if r.count <= 4 else "band",
        )
        if r.count == 3 and r.dtype == "uint8" and r.rgb_bands() == (1, 2, 3):
            profile["photometric"] = "RGB"
        # Undone in reverse on the way out: the file closed, the COG's staging file removed, GDAL's
        # settings restored, and the result renamed into place (or removed, after an error).
        with contextlib.ExitStack() as stack:
            self._temp = stack.enter_context(atomic_path(self.path, suffix=TIFF_EXTENSIONS[0]))
            stack.enter_context(_environment())
            self._staging = self._temp.with_name(self._temp.name + ".gtiff.tif") if self.cog else self._temp
            if self.cog:
                stack.callback(self._staging.unlink, missing_ok=True)
            try:
                self._ds = stack.enter_context(rasterio.open(self._staging, "w", **profile))
                self._ds.update_tags(**{**r.tags, "TIFFTAG_SOFTWARE": self.software})
                for band in range(1, r.count + 1):
                    if band <= len(r.band_tags) and r.band_tags[band - 1]:
                        self._ds.update_tags(band, **r.band_tags[band - 1])
                    if band <= len(r.descriptions) and r.descriptions[band - 1]:
                        self._ds.set_band_description(band, r.descriptions[band - 1])
                    if band <= len(r.units) and r.units[band - 1]:
                        self._ds.set_band_unit(band, r.units[band - 1])
                if r.colorinterp:
                    self._ds.colorinterp = r.colorinterp
                if r.scales:
                    self._ds.scales = r.scales
                if r.offsets:
                    self._ds.offsets = r.offsets
            except Exception as exc:
                raise GeoTiffError(f"cannot write '{self.path.name}': {' '.join(str(exc).split())[:200]}") from None
            self._cleanup = stack.pop_all()
        return self

    def write(self, samples: np.ndarray, bands: tuple[int, ...], top: int, left: int) -> None:
        """Write (len(bands), h, w) ``samples`` of the 1-based ``bands`` at (top, left)."""
        from rasterio.windows import Window

        _, height, width = samples.shape
        self._ds.write(samples, indexes=list(bands), window=Window(left, top, width, height))

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if exc is None:
                self._ds.close()
                if self.cog:
                    from rasterio.shutil import copy as gdal_copy

                    integer = np.issubdtype(np.dtype(self.raster.dtype), np.integer)
                    gdal_copy(self._staging, self._temp, driver="COG", compress="deflate", predictor="YES" if integer else "FLOATING_POINT", blocksize=_BLOCK, bigtiff="IF_SAFER")
        except Exception as error:
            self._cleanup.__exit__(type(error), error, error.__traceback__)
            raise GeoTiffError(f"cannot write '{self.path.name}': {' '.join(str(error).split())[:200]}") from None
        self._cleanup.__exit__(kind, exc, tb)
