"""DICOM and GeoTIFF files for the tests, written by pydicom and rasterio themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def textured(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A smooth image in [0, 1] with edges and gradients (float64, H x W)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = 0.5 + 0.25 * np.sin(9 * x + 4 * y) + 0.15 * (x > 0.5) - 0.1 * (y > 0.6)
    return np.clip(image + 0.03 * rng.standard_normal((height, width)), 0, 1)


def write_dicom(
    path: Path,
    *,
    rows: int = 24,
    cols: int = 20,
    frames: int = 1,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    series_uid: str | None = None,
    pixels: np.ndarray | None = None,
    transfer_syntax=None,
) -> Path:
    """A DICOM MR image (12-bit unsigned by default) with the elements the tests check."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    bits_allocated = 8 if bits_stored <= 8 else 16
    if pixels is None:
        top = 2**bits_stored - 1
        stack = [textured(rows, cols, seed=i) for i in range(frames)]
        values = np.rint(np.stack(stack) * top)
        if signed:
            values -= 2 ** (bits_stored - 1)
        dtype = {(8, False): np.uint8, (16, False): np.uint16, (8, True): np.int8, (16, True): np.int16}[(bits_allocated, signed)]
        pixels = values.astype(dtype)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = "Test^Patient"
    ds.PatientID = "SR-018"
    ds.Modality = "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.InstanceNumber = 1
    ds.SeriesDescription = "T2 axial"
    ds.PixelSpacing = [0.8, 0.6]
    ds.ImagerPixelSpacing = [0.8, 0.6]
    ds.SliceThickness = 3.0
    ds.ImagePositionPatient = [-100.0, -120.0, 30.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.RescaleSlope = 2 if signed else 1
    ds.RescaleIntercept = -1024 if signed else 0
    ds.add_new(0x00091010, "LO", "a private element")
    ds.Rows, ds.Columns = pixels.shape[1:3]
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.ascontiguousarray(pixels[0] if frames == 1 else pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_geotiff(
    path: Path,
    *,
    height: int = 96,
    width: int = 80,
    count: int = 3,
    dtype: str = "uint16",
    nodata: float | None = 0,
    hole: bool = True,
    rgb: bool = False,
    **profile,
) -> Path:
    """A GeoTIFF in UTM 33N (10 m pixels) with a nodata square in its top-left corner."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    bands = []
    for b in range(count):
        unit = textured(height, width, seed=b)
        if np.dtype(dtype).kind == "f":
            bands.append((unit * 0.4 + 0.02).astype(dtype))  # reflectances
        else:
            top = np.iinfo(dtype).max
            bands.append(np.rint(100 + unit * (top * 0.6)).astype(dtype))
    data = np.stack(bands)
    if hole and nodata is not None:
        data[:, :16, :12] = nodata
    with rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=count, dtype=dtype, crs="EPSG:32633",
        transform=from_origin(500000.0, 4600000.0, 10.0, 10.0), nodata=nodata, **profile,
    ) as ds:
        ds.write(data)
        ds.update_tags(ACQUISITION="2026-06-01", SENSOR="test")
        ds.set_band_description(1, "first band")
        if rgb:
            ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue] + [ColorInterp.undefined] * (count - 3)
    return path
