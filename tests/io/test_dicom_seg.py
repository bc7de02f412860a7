"""DICOM SEG out and in: lesions written by `segment --dicom-seg` as a SEG
that references the series (or image) they segment, and read back as
labels on that series' grid, in a study folder or opened alone."""

import numpy as np
import pydicom
import pytest

from napari_avpt.cli import main
from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.dicom_seg import SEG_SOP_CLASS, write_dicom_seg
from napari_avpt.phantoms.formats import write_dataset


@pytest.fixture(scope="module")
def duke(tmp_path_factory):
    return write_dataset("duke", 1, 0, tmp_path_factory.mktemp("duke") / "duke", (12, 40, 48))


def _series(study):
    images = read_path(study)
    return next(im for im in images if "1st pass" in im.name), images


def test_a_lesion_volume_goes_out_as_seg_and_comes_back_on_its_series(duke, tmp_path):
    study = next(duke.glob("Breast_MRI_*/*"))
    post, _ = _series(study)
    labels = np.zeros(post.data.shape, np.uint8)
    labels[4:7, 10:20, 12:30] = 1
    labels[9, 30:35, 5:9] = 2  # a second lesion: both are the one "lesion" segment
    series_folder = next(p for p in study.iterdir() if "1st pass" in p.name)
    seg_path = write_dicom_seg(series_folder.parent / "seg" / "lesions.seg.dcm", labels, post)
    ds = pydicom.dcmread(seg_path)
    assert ds.SOPClassUID == SEG_SOP_CLASS and ds.Modality == "SEG"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == post.meta["SeriesInstanceUID"]
    # in the study folder: a Labels image on the series' grid
    post_again, images = _series(study)
    segs = [im for im in images if im.labels]
    assert len(segs) == 1 and segs[0].data.shape == post.data.shape
    assert np.array_equal(segs[0].data > 0, labels > 0)
    assert segs[0].spacing == post.spacing and segs[0].meta["affine"] == post.meta["affine"]
    # opened alone: the series is found beside it
    [alone] = read_path(seg_path)
    assert alone.labels and np.array_equal(alone.data > 0, labels > 0)


def test_segment_writes_a_seg_for_dicom_inputs_and_refuses_it_for_others(tmp_path, capsys):
    from PIL import Image

    from napari_avpt.phantoms import make_ultrasound

    inbreast = write_dataset("inbreast", 1, 0, tmp_path / "inb", (160, 128))
    dcm = next(inbreast.rglob("*.dcm"))
    out = tmp_path / "R"
    assert main(["segment", str(dcm), "--dicom-seg", "--out", str(out)]) == 0
    [seg_file] = out.glob("*_lesions.seg.dcm")
    ds = pydicom.dcmread(seg_file)
    source = pydicom.dcmread(dcm)
    referenced = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    png = np.asarray(Image.open(next(out.glob("*_lesions.png"))))
    from napari_avpt.io.dicom_seg import seg_on_series

    [image] = read_path(dcm)
    back = seg_on_series(seg_file, image)
    assert np.array_equal(back.data > 0, png > 0)  # the SEG holds what the PNG holds
    frame = tmp_path / "f.png"
    Image.fromarray(make_ultrasound(4, label="benign", shape=(96, 120)).image).save(frame)
    assert main(["segment", str(frame), "--modality", "US", "--dicom-seg", "--out", str(tmp_path / "R2")]) == 2
    assert "not read from DICOM" in capsys.readouterr().err


def test_a_seg_without_its_series_is_one_clear_error(duke, tmp_path):
    study = next(duke.glob("Breast_MRI_*/*"))
    post, _ = _series(study)
    lonely = write_dicom_seg(tmp_path / "far" / "away" / "x.seg.dcm", np.ones(post.data.shape, np.uint8), post)
    with pytest.raises(AvptError, match="not beside it"):
        read_path(lonely)
