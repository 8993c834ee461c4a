"""Upscaling DICOM images and GeoTIFF rasters with any :class:`~superres.inference.upscaler.Upscaler`.

The upscaler sees only float planes in [0, 1] (:meth:`Upscaler.upscale_planes`); what a
Pixel Spacing or a CRS is stays in :mod:`superres.imaging.dicom` and
:mod:`superres.imaging.geotiff`, which read, map to [0, 1] and back, and write.

DICOM: every frame is upscaled on its own (a series is a folder of files, each its own job).

GeoTIFF: the raster is cut into windows of ``window`` px; each is read with a margin of
``margin`` px on every side that has a neighbour (so the model sees what it would see in the
whole scene), upscaled, cropped back to the window and written, so memory holds a few
windows whatever the scene's size. Bands are upscaled in groups: all at once when the model
takes as many channels as the file has bands; the red, green and blue bands together
through a colour model when the file names them; every other band alone (a one-channel
model takes it as it is, a colour model as grey). Samples map to [0, 1] by their type's
range (uint8 /255, uint16 /65535, int16 offset by 32768), float bands by their own range
over the scene (one pass of block reads first). Nodata pixels are filled from their
neighbours before the model runs (so an edge of -9999s does not ring into the data) and are
nodata again in the result, nearest-neighbour upscaled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from superres.device import format_bytes
from superres.errors import SuperresError
from superres.imaging.dicom import DicomImage, derived_dicom, from_unit, is_dicom, read_dicom, to_unit, write_dicom
from superres.imaging.geotiff import GeoTiffReader, GeoTiffWriter, is_geotiff, upscaled_raster
from superres.inference.alpha import bleed_colour
from superres.options import TIFF_EXTENSIONS

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

__all__ = ["GEO_MARGIN", "GEO_WINDOW", "band_groups", "file_kind", "upscale_dicom", "upscale_dicom_file", "upscale_geotiff_file"]

#: LR pixels of a GeoTIFF window (its output, 1024 px at x2, is two 512 px blocks of the file).
GEO_WINDOW = 512
#: LR pixels read beyond a window on every side with a neighbour: beyond the receptive radius
#: of the small shipped models and 10-block SwiftRep (their contracts' receptive_radius; tests
#: check it) and bicubic chroma (2).
GEO_MARGIN = 16
#: A scene of more windows than this gets its output size and an estimate of the time
#: printed before the work (64 windows: about a 4096x4096 scene).
_LONG_JOB_WINDOWS = 64


def file_kind(path: str | os.PathLike) -> str | None:
    """"dicom", "geotiff", or None for any other file (an ordinary image or video)."""
    if is_dicom(path):
        return "dicom"
    if Path(path).suffix.lower() in TIFF_EXTENSIONS and is_geotiff(path):
        return "geotiff"
    return None


def _description(upscaler: Upscaler) -> str:
    factor = upscaler.output.label if upscaler.output is not None else f"x{upscaler.scale}"
    return f"superres super-resolution {factor}, model {upscaler.name}"


def upscale_dicom(upscaler: Upscaler, image: DicomImage, *, progress=False):
    """The dataset of ``image`` upscaled, frame by frame, in its stored bit depth
    (:func:`superres.imaging.dicom.derived_dicom` says what else changes)."""
    count, height, width, channels = image.frames.shape
    upscaler.check_memory(height, width, channels=channels, frames=count, itemsize=image.frames.dtype.itemsize)
    frames = []
    for index in range(image.frames.shape[0]):
        out, _ = upscaler.upscale_planes(to_unit(image, index), progress=progress)
        frames.append(from_unit(image, out))
    description = _description(upscaler)
    return derived_dicom(image, np.stack(frames), description=description, uid_seed=description)


def upscale_dicom_file(upscaler: Upscaler, source: str | os.PathLike, output: str | os.PathLike, *, progress=False) -> str:
    """Read, upscale and write a DICOM file (atomically); returns a one-line summary."""
    image = read_dicom(source)
    dataset = upscale_dicom(upscaler, image, progress=progress)
    write_dicom(output, dataset)
    n, h, w, _ = image.frames.shape
    frames = f", {n} frames" if n > 1 else ""
    return f"{w}x{h} -> {dataset.Columns}x{dataset.Rows}{frames}, DICOM {image.photometric} {image.bits_stored}-bit"


def band_groups(count: int, model_channels: int, rgb: tuple[int, int, int] | None) -> list[tuple[int, ...]]:
    """The 1-based band groups a raster of ``count`` bands is upscaled in (module docstring)."""
    if count == model_channels and count not in (1, 3):
        return [tuple(range(1, count + 1))]
    groups: list[tuple[int, ...]] = []
    if rgb is not None:
        groups.append(rgb)
    groups += [(b,) for b in range(1, count + 1) if rgb is None or b not in rgb]
    return groups


def _unit_mapping(reader: GeoTiffReader, band: int) -> tuple[float, float]:
    """(low, high) of a band's samples that map to 0 and 1."""
    dtype = np.dtype(reader.raster.dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    low, high = reader.band_range(band)
    return low, (high if high > low else low + 1.0)


def _spans(length: int, window: int, margin: int):
    """(start, stop, read_start, read_stop) per window along an axis."""
    for start in range(0, length, window):
        stop = min(start + window, length)
        yield start, stop, max(0, start - margin), min(length, stop + margin)


def upscale_geotiff_file(
    upscaler: Upscaler,
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    cog: bool = False,
    window: int = GEO_WINDOW,
    margin: int = GEO_MARGIN,
    progress=None,
    log=None,
) -> str:
    """Upscale a GeoTIFF window by window into a tiled, compressed GeoTIFF (a Cloud-Optimised
    one with ``cog``), written atomically; returns a one-line summary. ``progress(done, total)``
    is called after each window when given. ``log(line)`` gets, for a scene of more than
    :data:`_LONG_JOB_WINDOWS` windows, the output's size before any work and an estimate of
    the time once the first window is done.

    NaN and infinite float samples are never fed to the model nor invented: they are masked
    out of its input like nodata (filled from their neighbours) and written back as they
    were, nearest-neighbour upscaled; the summary counts them."""
    if upscaler.output is not None:
        raise SuperresError(f"'{Path(source).name}': a GeoTIFF is upscaled by a whole factor of the model (-s 2, 3, 4), not to a size")
    scale = upscaler.scale
    with GeoTiffReader(source) as reader:
        raster = reader.raster
        dtype = np.dtype(raster.dtype)
        if not (np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2) and dtype not in (np.float32, np.float64):
            raise SuperresError(f"'{Path(source).name}': {dtype} samples are not supported (8- or 16-bit integers, float32, float64)")
        groups = band_groups(raster.count, upscaler.channels, raster.rgb_bands())
        mapping = {b: _unit_mapping(reader, b) for b in range(1, raster.count + 1)}
        rows = list(_spans(raster.height, window, margin))
        cols = list(_spans(raster.width, window, margin))
        total, done = len(rows) * len(cols) * len(groups), 0
        long_job = log is not None and total > _LONG_JOB_WINDOWS
        if long_job:
            size = raster.width * scale * raster.height * scale * raster.count * dtype.itemsize
            log(f"'{Path(source).name}': {raster.width}x{raster.height} -> {raster.width * scale}x{raster.height * scale}, "
                f"{raster.count} x {dtype}: {format_bytes(size)} uncompressed to write (compressed, less), in {total} windows")
        non_finite = 0
        started = time.perf_counter()
        with GeoTiffWriter(output, upscaled_raster(raster, scale), cog=cog, software=_description(upscaler)) as writer:
            for top, bottom, read_top, read_bottom in rows:
                for left, right, read_left, read_right in cols:
                    box = (read_top, read_left, read_bottom - read_top, read_right - read_left)
                    for bands in groups:
                        result = _upscale_window(upscaler, reader, bands, box, mapping, dtype, raster.nodata)
                        y0, x0 = (top - read_top) * scale, (left - read_left) * scale
                        crop = result[:, y0 : y0 + (bottom - top) * scale, x0 : x0 + (right - left) * scale]
                        if dtype.kind == "f":
                            non_finite += int(np.count_nonzero(~np.isfinite(crop))) // (scale * scale)
                        writer.write(np.ascontiguousarray(crop), bands, top * scale, left * scale)
                        done += 1
                        if long_job and done == 1:
                            seconds = time.perf_counter() - started
                            log(f"'{Path(source).name}': about {_duration(seconds * total)} estimated "
                                f"({seconds:.2f} s for the first of {total} windows)")
                        if progress is not None:
                            progress(done, total)
    kept = f", {non_finite} NaN or infinite samples kept as they were" if non_finite else ""
    return f"{raster.width}x{raster.height} -> {raster.width * scale}x{raster.height * scale}, GeoTIFF {raster.count} x {dtype}, {_grouping(groups)}{kept}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _grouping(groups: list[tuple[int, ...]]) -> str:
    together = [g for g in groups if len(g) > 1]
    alone = len(groups) - len(together)
    parts = [f"bands {','.join(map(str, g))} together" for g in together]
    if alone:
        parts.append(f"{alone} band{'s' if alone > 1 else ''} alone" if together else "band by band" if alone > 1 else "one band")
    return ", ".join(parts)


def _upscale_window(upscaler: Upscaler, reader: GeoTiffReader, bands, box, mapping, dtype: np.dtype, nodata) -> np.ndarray:
    """A window's ``bands`` upscaled: (len(bands), s*h, s*w) samples of ``dtype``."""
    samples = reader.read(bands, *box)
    masked = reader.valid(bands, *box)  # GDAL's mask: the nodata value
    # GDAL masks only the nodata value: NaN and inf in a file without one are not masked,
    # and once clipped to [0, 1] they came back as plausible numbers.
    finite = np.isfinite(samples) if dtype.kind == "f" else None
    valid = masked if finite is None else masked & finite.all(axis=0)
    low = np.array([mapping[b][0] for b in bands], dtype=np.float64)[:, None, None]
    span = np.array([mapping[b][1] - mapping[b][0] for b in bands], dtype=np.float64)[:, None, None]
    unit = ((samples.astype(np.float64) - low) / span).astype(np.float32)
    unit = np.nan_to_num(unit, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(unit, 0.0, 1.0, out=unit)
    everything = bool(valid.all())
    if not everything:  # nodata filled from its neighbours (a window of nothing but nodata stays as it is)
        unit = bleed_colour(unit.transpose(1, 2, 0), valid).transpose(2, 0, 1)
    out, _ = upscaler.upscale_planes(unit)
    values = out.astype(np.float64) * span + low
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    result = values.astype(dtype)
    if nodata is not None and not np.isnan(nodata):
        # A data pixel the model brought onto the nodata value would vanish from the map:
        # it takes the nearest value that is not nodata instead.
        clash = result == dtype.type(nodata)
        if clash.any():
            top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else np.inf
            nudged = np.nextafter(dtype.type(nodata), dtype.type(top)) if dtype.kind == "f" else nodata + (1 if nodata < top else -1)
            result[clash] = nudged
    if not everything:
        s = upscaler.scale
        holes = ~np.repeat(np.repeat(masked, s, axis=0), s, axis=1)
        result[:, holes] = nodata if nodata is not None else 0
        if finite is not None and not finite.all():
            # Each NaN or inf sample back as it was, over its s x s output pixels.
            bad = ~np.repeat(np.repeat(finite, s, axis=1), s, axis=2)
            result[bad] = np.repeat(np.repeat(samples, s, axis=1), s, axis=2)[bad]
    return result
