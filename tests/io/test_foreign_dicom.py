"""Our readers on DICOM files written by other software (pydicom's own test
files: GE, Siemens, dcmtk, GDCM outputs), not by our phantom writers."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from napari_avpt.errors import AvptError
from napari_avpt.io import read_path


def _file(name: str) -> Path:
    path = get_testdata_file(name, download=False)  # these ship inside pydicom's wheel
    assert path is not None, f"pydicom's test file {name} is missing"
    return Path(path)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm"])
def test_real_grayscale_files_match_pydicom_after_rescale(name):
    path = _file(name)
    (image,) = read_path(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    assert np.allclose(image.data, expected)
    assert image.spacing == pytest.approx([float(v) for v in ds.PixelSpacing])
    assert image.modality == ds.Modality and image.window is not None


def test_palette_colour_ultrasound_becomes_rgb():
    (image,) = read_path(_file("examples_palette.dcm"))
    assert image.rgb and image.data.shape[-1] == 3 and image.data.dtype == np.uint8
    assert image.modality == "US" and image.meta["spacing_known"]


def test_real_damaged_and_undecodable_files():
    with pytest.raises(AvptError, match="damaged or truncated"):
        read_path(_file("MR_truncated.dcm"))
    # 12-bit JPEG Extended: Pillow decodes 8-bit JPEG only; the message says what to install
    with pytest.raises(AvptError, match="JPEG Extended compressed.*pip install pylibjpeg"):
        read_path(_file("JPGExtended.dcm"))
    # JPEG-LS decodes (pyjpegls comes with highdicom), to the very values of the uncompressed file
    (jls,) = read_path(_file("MR_small_jpeg_ls_lossless.dcm"))
    (plain,) = read_path(_file("MR_small.dcm"))
    assert np.array_equal(jls.data, plain.data)
    with pytest.raises(AvptError, match="holds no image"):
        read_path(_file("rtplan.dcm"))


def test_folder_with_mixed_planes_opens_each_plane():
    folder = _file("MR_small.dcm").parent / "dicomdirtests"
    images = read_path(folder)
    assert len(images) > 3
    assert all(im.data.ndim in (2, 3) for im in images)
