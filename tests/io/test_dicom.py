import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEGLSLossless

from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.dicom import read_dicom
from napari_avpt.phantoms.formats import MG_STORAGE, dicom_dataset, write_mammogram_dicom

US_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def test_mammogram_round_trip(tmp_path, small_mammogram):
    path = tmp_path / "mg.dcm"
    write_mammogram_dicom(small_mammogram, path, "P1", "uid-1")
    image = read_dicom(path)
    assert np.array_equal(image.data, small_mammogram.image)
    assert image.spacing == pytest.approx(small_mammogram.spacing, rel=1e-9)
    assert image.modality == "MG"
    assert image.meta["laterality"] == "R" and image.meta["view"] == "MLO"
    assert image.meta["spacing_source"] == "ImagerPixelSpacing"
    lo, hi = image.window
    ds = pydicom.dcmread(path)
    assert (lo + hi) / 2 == pytest.approx(float(ds.WindowCenter)) and hi - lo == pytest.approx(float(ds.WindowWidth))
    data, kwargs, kind = image.layer_data()
    assert kind == "image" and kwargs["scale"] == image.spacing and kwargs["contrast_limits"] == image.window
    assert kwargs["metadata"]["modality"] == "MG" and kwargs["metadata"]["source_path"] == str(path)


def test_monochrome1_is_shown_inverted(tmp_path, small_mammogram):
    mono2, mono1 = tmp_path / "m2.dcm", tmp_path / "m1.dcm"
    write_mammogram_dicom(small_mammogram, mono2, "P1", "a")
    write_mammogram_dicom(small_mammogram, mono1, "P1", "b", monochrome1=True)
    assert pydicom.dcmread(mono1).PhotometricInterpretation == "MONOCHROME1"
    stored = pydicom.dcmread(mono1).pixel_array
    assert not np.array_equal(stored, small_mammogram.image)
    a, b = read_dicom(mono2), read_dicom(mono1)
    assert np.array_equal(b.data, a.data)  # bright = dense again
    assert b.window == pytest.approx(a.window)
    assert b.meta["inverted"] and not a.meta["inverted"]


def _save(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rescale_slope_intercept_and_pixel_spacing(tmp_path):
    stored = np.arange(64, dtype=np.uint16).reshape(8, 8)
    ds = dicom_dataset(stored, "MR", "1.2.840.10008.5.1.4.1.1.4", "r", PixelSpacing=["0.5", "0.25"])
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-10"
    image = read_dicom(_save(ds, tmp_path / "r.dcm"))
    assert image.data.dtype == np.float32
    assert np.allclose(image.data, stored * 0.5 - 10)
    assert image.spacing == (0.5, 0.25) and image.meta["spacing_known"]


def test_multiframe_is_a_stack(tmp_path):
    frames = np.stack([np.full((6, 7), i * 10, np.uint16) for i in range(4)])
    ds = dicom_dataset(frames[0], "US", US_STORAGE, "mf")
    ds.NumberOfFrames = 4
    ds.PixelData = frames.tobytes()
    image = read_dicom(_save(ds, tmp_path / "mf.dcm"))
    assert image.data.shape == (4, 6, 7) and len(image.spacing) == 3
    assert np.array_equal(image.data, frames)


def _rgb_dataset(rgb):
    ds = dicom_dataset(rgb[..., 0].astype(np.uint16), "US", US_STORAGE, "rgb")
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.astype(np.uint8).tobytes()
    region = Dataset()
    region.PhysicalUnitsXDirection = 3
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = 0.01
    region.PhysicalDeltaY = 0.02
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    return ds


def test_rgb_ultrasound_with_equal_channels_becomes_gray(tmp_path):
    gray = np.random.default_rng(0).integers(0, 255, (10, 12))
    image = read_dicom(_save(_rgb_dataset(np.stack([gray] * 3, -1)), tmp_path / "g.dcm"))
    assert not image.rgb and image.data.shape == (10, 12) and np.array_equal(image.data, gray)
    assert image.spacing == pytest.approx((0.2, 0.1))  # cm -> mm, rows are Y
    assert image.meta["spacing_source"] == "UltrasoundRegion"


def test_colour_ultrasound_stays_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (10, 12, 3))
    image = read_dicom(_save(_rgb_dataset(rgb), tmp_path / "c.dcm"))
    assert image.rgb and image.data.shape == (10, 12, 3)
    assert image.layer_data()[1]["rgb"] is True


def test_bad_files_give_one_line_reasons(tmp_path):
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"not a dicom at all" * 20)
    with pytest.raises(AvptError, match=r"garbage\.dcm: not a DICOM file"):
        read_path(garbage)

    good = _save(dicom_dataset(np.ones((16, 16), np.uint16), "MG", MG_STORAGE, "t"), tmp_path / "good.dcm")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(AvptError, match=r"truncated\.dcm: pixel data is damaged or truncated") as err:
        read_path(truncated)
    assert "\n" not in str(err.value)

    ds = dicom_dataset(np.ones((16, 16), np.uint16), "MG", MG_STORAGE, "j")
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 40])
    ds["PixelData"].VR = "OB"
    compressed = _save(ds, tmp_path / "jls.dcm")
    with pytest.raises(AvptError, match=r"jls\.dcm: ") as err:  # a decoder is installed: the data is what is wrong
        read_path(compressed)
    assert "\n" not in str(err.value)

    with pytest.raises(AvptError, match="no such file"):
        read_path(tmp_path / "missing.dcm")
