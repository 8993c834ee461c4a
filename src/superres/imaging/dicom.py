"""DICOM images in and out (the optional extra ``superres[medical]``: pydicom).

A :class:`DicomImage` is the pixels of a file (every frame, as stored) and its dataset, which
travels with them: :func:`read_dicom` reads it, :func:`derived_dicom` makes the dataset of an
upscaled result, :func:`write_dicom` writes it. Only what the upscaling changes is changed:

- Rows and Columns; Pixel Spacing and Imager Pixel Spacing, wherever they occur (the
  functional groups of enhanced multi-frame files too), divided by the factor; Image Position
  (Patient) moved to the centre of the new first pixel;
- a new SOP Instance UID (also in the file meta), and a new Series Instance UID made from the
  original one, the model and the factor, so that the files of one series come back as one new
  series beside the original rather than mixed into it;
- Image Type DERIVED\\SECONDARY (its other values kept), a Derivation Description naming
  superres and the model, and a Source Image Sequence pointing to the original instance.

Every other element (patient, study, windowing, rescale slope and intercept, private tags)
is kept as it was. Pixels are upscaled in the stored bit depth: BitsStored's range maps to
[0, 1] for the model and back (signed samples offset by half of it), MONOCHROME1 is
inverted for the model (which learnt that larger is brighter) and back.

Transfer syntaxes: the uncompressed ones (implicit and explicit VR little endian, explicit
big endian, deflated), which pydicom decodes with numpy alone; results are written explicit
VR little endian unless the input was implicit VR little endian. A compressed file (JPEG,
JPEG 2000, RLE) is refused with a one-line error saying how to decompress it.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from superres.atomic import atomic_path
from superres.errors import SuperresError
from superres.extras import require

__all__ = ["DICOM_EXTENSIONS", "DicomError", "DicomImage", "derived_dicom", "from_unit", "is_dicom", "read_dicom", "to_unit", "write_dicom"]

_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB")
_SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")


class DicomError(SuperresError):
    """A DICOM file that cannot be read or written; the message is one line."""


def _pydicom():
    return require("pydicom", extra="medical", purpose="DICOM")


#: Lower-case extensions, with the dot, of DICOM files (which are also found without one).
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM Part 10 file (the "DICM" marker after its 128-byte preamble)
    or is named ``.dcm``/``.dicom``."""
    path = Path(path)
    if path.suffix.lower() in DICOM_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


@dataclass
class DicomImage:
    """A DICOM file's pixels and dataset.

    ``frames``: (N, H, W, C) stored values (C = 1, or 3 for RGB), uint8/uint16 or int8/int16
    for signed samples; ``dataset``: the pydicom ``FileDataset`` (its Pixel Data is not used
    once read)."""

    frames: np.ndarray
    dataset: object

    @property
    def bits_stored(self) -> int:
        return int(self.dataset.BitsStored)

    @property
    def signed(self) -> bool:
        return int(getattr(self.dataset, "PixelRepresentation", 0)) == 1

    @property
    def photometric(self) -> str:
        return str(self.dataset.PhotometricInterpretation)


def read_dicom(path: str | os.PathLike) -> DicomImage:
    """Read a single- or multi-frame DICOM image (MONOCHROME1/2 or RGB, 8 to 16 bits stored,
    an uncompressed transfer syntax); every failure is a one-line :class:`DicomError`."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    name = Path(path).name
    try:
        with warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("ignore")  # a damaged file is one line of error, not a warning as well
            ds = pydicom.dcmread(fh)
            # pydicom stops quietly at an element it cannot parse: the bytes it left unread
            # tell a damaged header from a file that really has no image.
            parsed = fh.tell()
            unread = os.fstat(fh.fileno()).st_size - parsed
    except InvalidDicomError:
        raise DicomError(f"cannot read '{name}': not a DICOM file (no DICM marker and no readable header)") from None
    except Exception as exc:  # pydicom raises many kinds on a damaged header
        raise DicomError(f"cannot read '{name}': damaged DICOM header ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    if "PixelData" not in ds:
        if unread > 0:
            raise DicomError(
                f"cannot read '{name}': damaged DICOM header (could not be read past byte {parsed} of "
                f"{parsed + unread}); the file may be truncated or corrupt"
            )
        raise DicomError(f"cannot read '{name}': the DICOM file holds no image (no Pixel Data; a report or a structured set?)")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and syntax.is_compressed:
        raise DicomError(
            f"cannot read '{name}': compressed transfer syntax {syntax.name}; superres reads uncompressed DICOM only "
            "(decompress it first, e.g. 'gdcmconv --raw in.dcm out.dcm' or 'dcmdjpeg in.dcm out.dcm')"
        )
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in _PHOTOMETRIC:
        raise DicomError(f"cannot read '{name}': photometric interpretation {photometric or 'missing'} (superres takes {', '.join(_PHOTOMETRIC)})")
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16) or not 1 <= int(ds.get("BitsStored", 0)) <= bits:
        raise DicomError(f"cannot read '{name}': {bits} bits allocated, {ds.get('BitsStored')} stored (superres takes 8 or 16 allocated)")
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DicomError(f"cannot read '{name}': its pixel data does not decode ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = photometric == "RGB"
    shape = (frames, int(ds.Rows), int(ds.Columns), 3 if colour else 1)
    if pixels.size != np.prod(shape):
        raise DicomError(f"cannot read '{name}': {pixels.size} samples for {frames} frame(s) of {ds.Columns}x{ds.Rows}")
    return DicomImage(frames=pixels.reshape(shape), dataset=ds)


def _stored_range(image: DicomImage) -> tuple[float, float]:
    bits = image.bits_stored
    if image.signed:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def to_unit(image: DicomImage, frame: int) -> np.ndarray:
    """Frame ``frame`` as float32 (C, H, W) planes in [0, 1]: the BitsStored range mapped
    onto [0, 1], MONOCHROME1 inverted so that larger is brighter, as a model expects."""
    low, high = _stored_range(image)
    unit = (image.frames[frame].astype(np.float32) - np.float32(low)) / np.float32(high - low)
    if image.photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return np.clip(unit, 0.0, 1.0).transpose(2, 0, 1)


def from_unit(image: DicomImage, planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_unit` for (C, H', W') planes: (H', W', C) stored values of the
    input's type, rounded and within the BitsStored range."""
    low, high = _stored_range(image)
    unit = np.clip(planes.transpose(1, 2, 0), 0.0, 1.0)
    if image.photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return np.rint(unit * np.float32(high - low) + np.float32(low)).astype(image.frames.dtype)


def _ds(value: float) -> float:
    # DS values are at most 16 characters: 10 significant digits keep every spacing and position exact enough.
    return float(f"{value:.10g}")


def derived_dicom(image: DicomImage, frames: np.ndarray, *, description: str, uid_seed: str):
    """The dataset of an upscaled ``image`` whose (N, H', W', C) stored-value ``frames`` are
    given: geometry and identity updated as the module docstring lists, everything else kept.
    ``uid_seed`` (the model and factor) makes the new UIDs: the same input and settings always
    give the same UIDs, and the files of a series share their new Series Instance UID."""
    _pydicom()
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

    source = image.dataset
    ds = copy.deepcopy(source)
    rows, cols = int(source.Rows), int(source.Columns)
    new_rows, new_cols = frames.shape[1:3]
    fy, fx = new_rows / rows, new_cols / cols
    ds.Rows, ds.Columns = new_rows, new_cols
    for element in ds.iterall():  # nested sequences too: the functional groups of enhanced multi-frame files
        if element.keyword in _SPACINGS and element.value is not None and element.VM == 2:
            row_spacing, col_spacing = element.value
            element.value = [_ds(float(row_spacing) / fy), _ds(float(col_spacing) / fx)]
    spacing = source.get("PixelSpacing")
    if "ImagePositionPatient" in source and "ImageOrientationPatient" in source and spacing:
        # The position is the centre of the first pixel, which moves towards the corner.
        along_row = np.array(source.ImageOrientationPatient[:3], dtype=float)  # direction of increasing column
        along_col = np.array(source.ImageOrientationPatient[3:], dtype=float)  # direction of increasing row
        shift = -0.5 * (1 - 1 / fx) * float(spacing[1]) * along_row - 0.5 * (1 - 1 / fy) * float(spacing[0]) * along_col
        ds.ImagePositionPatient = [_ds(p) for p in np.array(source.ImagePositionPatient, dtype=float) + shift]

    old_sop = str(source.SOPInstanceUID)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[old_sop, uid_seed])
    if "SeriesInstanceUID" in source:
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(source.SeriesInstanceUID), uid_seed])
    image_type = list(source.get("ImageType", [])) or ["DERIVED", "SECONDARY"]
    image_type[0] = "DERIVED"
    if len(image_type) > 1:
        image_type[1] = "SECONDARY"
    else:
        image_type.append("SECONDARY")
    ds.ImageType = image_type
    ds.DerivationDescription = description[:1024]
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = old_sop
    ds.SourceImageSequence = Sequence([reference])

    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    keep = meta.get("TransferSyntaxUID") == ImplicitVRLittleEndian
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if keep else ExplicitVRLittleEndian
    meta.ImplementationVersionName = "SUPERRES"
    samples = np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder("<"), copy=False)
    ds.PixelData = samples.tobytes()
    ds["PixelData"].VR = "OB" if int(source.BitsAllocated) == 8 else "OW"
    return ds


def write_dicom(path: str | os.PathLike, dataset) -> Path:
    """Write ``dataset`` (from :func:`derived_dicom`) to ``path`` atomically."""
    path = Path(path)
    try:
        with atomic_path(path) as temp:
            dataset.save_as(temp, enforce_file_format=True)
    except OSError as exc:
        raise DicomError(f"cannot write '{path.name}': {exc.strerror or exc}") from None
    except Exception as exc:
        raise DicomError(f"cannot write '{path.name}': {type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None
    return path
