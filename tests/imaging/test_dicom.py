"""DICOM in and out (superres.imaging.dicom, through superres.inference.scientific), on files
pydicom writes here."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="DICOM needs the medical extra: pip install 'superres[medical]'")

from scientific_files import write_dicom  # noqa: E402
from superres.imaging.dicom import DicomError, is_dicom, read_dicom  # noqa: E402
from superres.inference.scientific import upscale_dicom_file  # noqa: E402

# What an upscaled file may differ in; every other element must be the input's.
CHANGED = {
    "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "ImagePositionPatient", "SOPInstanceUID",
    "SeriesInstanceUID", "ImageType", "DerivationDescription", "SourceImageSequence", "PixelData",
}


def _upscale(upscaler, tmp_path, **kwargs):
    source = write_dicom(tmp_path / "in.dcm", **kwargs)
    output = tmp_path / "out.dcm"
    upscale_dicom_file(upscaler, source, output)
    return pydicom.dcmread(source), pydicom.dcmread(output)


def test_12_bit_monochrome2_doubles_its_grid_and_keeps_every_other_element(espcn, tmp_path):
    before, after = _upscale(espcn, tmp_path)
    assert (after.Rows, after.Columns) == (2 * before.Rows, 2 * before.Columns)
    assert [float(v) for v in after.PixelSpacing] == pytest.approx([0.4, 0.3])
    assert [float(v) for v in after.ImagerPixelSpacing] == pytest.approx([0.4, 0.3])
    # The centre of the first pixel moves a quarter of an input pixel towards the corner.
    assert [float(v) for v in after.ImagePositionPatient] == pytest.approx([-100.15, -120.2, 30.0])
    assert after.SOPInstanceUID != before.SOPInstanceUID
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert list(after.ImageType) == ["DERIVED", "SECONDARY", "M", "ND"]
    assert "superres" in after.DerivationDescription and "espcn" in after.DerivationDescription
    assert after.SourceImageSequence[0].ReferencedSOPInstanceUID == before.SOPInstanceUID
    for element in before:
        if element.keyword not in CHANGED:
            assert element.tag in after and after[element.tag].value == element.value, element.keyword
    pixels = after.pixel_array
    assert pixels.shape == (48, 40) and pixels.dtype == np.uint16
    assert pixels.min() >= 0 and pixels.max() <= 4095  # BitsStored's range
    # The model upscaled it: close to the input's own values, at twice the size.
    small = pixels.reshape(24, 2, 20, 2).mean(axis=(1, 3))
    assert np.abs(small - before.pixel_array).mean() < 40


def test_multi_frame_files_upscale_every_frame_alone(bicubic, tmp_path):
    before, after = _upscale(bicubic, tmp_path, frames=3, bits_stored=8)
    assert int(after.NumberOfFrames) == 3 and after.pixel_array.shape == (3, 48, 40)
    for index in range(3):
        single = write_dicom(tmp_path / f"frame{index}.dcm", pixels=before.pixel_array[index][None], bits_stored=8)
        upscale_dicom_file(bicubic, single, tmp_path / f"frame{index}_x2.dcm")
        alone = pydicom.dcmread(tmp_path / f"frame{index}_x2.dcm").pixel_array
        assert np.array_equal(after.pixel_array[index], alone)


def test_monochrome1_is_upscaled_as_its_inverse_and_stays_monochrome1(espcn, tmp_path):
    m2 = write_dicom(tmp_path / "m2.dcm")
    inverted = 4095 - pydicom.dcmread(m2).pixel_array[None]
    m1 = write_dicom(tmp_path / "m1.dcm", pixels=inverted.astype(np.uint16), photometric="MONOCHROME1")
    upscale_dicom_file(espcn, m2, tmp_path / "m2_x2.dcm")
    upscale_dicom_file(espcn, m1, tmp_path / "m1_x2.dcm")
    out1, out2 = pydicom.dcmread(tmp_path / "m1_x2.dcm"), pydicom.dcmread(tmp_path / "m2_x2.dcm")
    assert out1.PhotometricInterpretation == "MONOCHROME1"
    assert np.abs((4095 - out1.pixel_array.astype(int)) - out2.pixel_array.astype(int)).max() <= 1


def test_signed_ct_keeps_its_rescale_and_its_values_in_range(bicubic, tmp_path):
    before, after = _upscale(bicubic, tmp_path, bits_stored=12, signed=True)
    assert (float(after.RescaleSlope), float(after.RescaleIntercept)) == (2.0, -1024.0)
    assert after.PixelRepresentation == 1 and after.pixel_array.dtype == np.int16
    assert after.pixel_array.min() >= -2048 and after.pixel_array.max() <= 2047
    # Bicubic keeps a flat area flat: the same stored values, hence the same Hounsfield units.
    flat = np.full((1, 24, 20), -700, dtype=np.int16)
    write_dicom(tmp_path / "flat.dcm", pixels=flat, bits_stored=12, signed=True)
    upscale_dicom_file(bicubic, tmp_path / "flat.dcm", tmp_path / "flat_x2.dcm")
    assert np.all(pydicom.dcmread(tmp_path / "flat_x2.dcm").pixel_array == -700)


def test_rgb_dicom_goes_through_a_colour_model(bicubic, tmp_path):
    rgb = (np.random.default_rng(1).random((1, 16, 12, 3)) * 255).astype(np.uint8)
    before, after = _upscale(bicubic, tmp_path, pixels=rgb, bits_stored=8, photometric="RGB")
    assert after.pixel_array.shape == (32, 24, 3) and after.PhotometricInterpretation == "RGB"


def test_a_corrupt_header_is_one_line(tmp_path):
    path = tmp_path / "broken.dcm"
    good = write_dicom(tmp_path / "good.dcm").read_bytes()
    path.write_bytes(good[:140] + b"\xff" * 64 + good[204:260])  # the marker, then a mangled header
    with pytest.raises(DicomError) as err:
        read_dicom(path)
    assert "broken.dcm" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "text.dcm").write_text("not a DICOM file")
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_dicom(tmp_path / "text.dcm")


def test_compressed_transfer_syntaxes_are_refused_with_what_to_do(tmp_path):
    from pydicom.uid import JPEGBaseline8Bit

    path = write_dicom(tmp_path / "jpeg.dcm", bits_stored=8)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xd9"])
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomError, match="compressed transfer syntax .*decompress it first"):
        read_dicom(path)


def test_dicom_is_recognised_by_its_marker_without_an_extension(tmp_path):
    path = write_dicom(tmp_path / "IM0001")
    assert is_dicom(path) and not is_dicom(tmp_path / "missing")


def test_pixel_spacing_inside_functional_groups_is_divided_too(bicubic, tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    source = write_dicom(tmp_path / "enhanced.dcm")
    ds = pydicom.dcmread(source)
    measures = Dataset()
    measures.PixelSpacing = [0.8, 0.6]
    group = Dataset()
    group.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    ds.save_as(source, enforce_file_format=True)
    upscale_dicom_file(bicubic, source, tmp_path / "enhanced_x2.dcm")
    after = pydicom.dcmread(tmp_path / "enhanced_x2.dcm")
    nested = after.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert [float(v) for v in nested] == pytest.approx([0.4, 0.3])


def test_a_corrupt_header_is_called_damaged_not_an_image_less_file(tmp_path):
    """Issue 32, item 9: pydicom stops quietly at an element it cannot parse, so a corrupt
    header read as a file with no Pixel Data, which misdescribed it."""
    good = write_dicom(tmp_path / "good.dcm")
    data = bytearray(good.read_bytes())
    data[600:608] = b"\xff" * 8  # an element's tag and length in the middle of the header
    (tmp_path / "corrupt.dcm").write_bytes(data)
    with pytest.raises(DicomError, match=r"^cannot read 'corrupt.dcm': damaged DICOM header \(could not be read past byte \d+ of 1906\)"):
        read_dicom(tmp_path / "corrupt.dcm")
    # A real file without an image is still said to be one.
    import pydicom

    ds = pydicom.dcmread(good)
    del ds.PixelData
    ds.save_as(tmp_path / "report.dcm")
    with pytest.raises(DicomError, match="holds no image"):
        read_dicom(tmp_path / "report.dcm")
