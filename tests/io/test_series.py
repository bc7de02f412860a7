import os
import random

import numpy as np
import pytest

from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.dicom import read_dicom_series
from napari_avpt.phantoms.formats import MR_STORAGE, dicom_dataset, write_duke_patient
from napari_avpt.phantoms.mri import PHASES


def _shuffle_names(folder):
    """Rename every slice file to a random name: order must come from positions."""
    files = sorted(p for p in folder.rglob("*.dcm"))
    names = [f"{i:04d}.dcm" for i in range(len(files))]
    random.Random(0).shuffle(names)
    moved = []
    for f, n in zip(files, names):
        target = f.parent / ("x" + n)
        os.rename(f, target)
        moved.append(target)
    return moved


def test_duke_patient_series_sorted_by_position(tmp_path, small_mri):
    folder = tmp_path / "Breast_MRI_001"
    write_duke_patient(small_mri, folder, "Breast_MRI_001", "u")
    _shuffle_names(folder)
    series = read_dicom_series(folder)
    assert [s.name for s in series] == [
        "ax dyn pre",
        "ax dyn 1st pass",
        "ax dyn 2nd pass",
        "ax dyn 3rd pass",
        "ax dyn 4th pass",
    ]
    for s, phase in zip(series, PHASES):
        assert np.array_equal(s.data, small_mri.phases[phase])
        assert s.spacing == pytest.approx(small_mri.spacing, rel=1e-6)
        assert s.modality == "MR" and not s.meta["irregular_spacing"]
    # Same frame of reference: the series line up in napari.
    assert len({s.origin for s in series}) == 1
    affine = np.array(series[0].meta["affine"])
    assert affine[2, 0] == pytest.approx(small_mri.spacing[0], rel=1e-6)  # slices run along +z (superior)


def _slice(value, z, uid, **extra):
    return dicom_dataset(
        np.full((4, 5), value, np.uint16),
        "MR",
        MR_STORAGE,
        f"{uid}-{z}-{value}",
        SeriesInstanceUID=uid,
        ImagePositionPatient=["0", "0", str(z)],
        ImageOrientationPatient=["1", "0", "0", "0", "1", "0"],
        PixelSpacing=["0.7", "0.7"],
        **extra,
    )


def test_repeated_positions_make_a_4d_series(tmp_path):
    uid = "1.2.3.4"
    k = 0
    for t in (2, 1):  # written out of temporal order on purpose
        for z in (3.0, 0.0, 1.5):
            _slice(int(t * 100 + z * 10), z, uid, TemporalPositionIdentifier=t).save_as(
                tmp_path / f"f{k}.dcm", enforce_file_format=True
            )
            k += 1
    (image,) = read_dicom_series(tmp_path)
    assert image.data.shape == (2, 3, 4, 5)
    assert image.data[:, :, 0, 0].tolist() == [[100, 115, 130], [200, 215, 230]]
    assert image.spacing == pytest.approx((1.0, 1.5, 0.7, 0.7))


def test_missing_slice_in_a_repeated_series_is_reported(tmp_path):
    uid = "1.2.3.5"
    for i, (t, z) in enumerate([(1, 0.0), (1, 1.0), (2, 0.0)]):
        _slice(i, z, uid, TemporalPositionIdentifier=t).save_as(tmp_path / f"f{i}.dcm", enforce_file_format=True)
    with pytest.raises(AvptError, match="missing or duplicated"):
        read_path(tmp_path)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AvptError, match="no DICOM files"):
        read_path(tmp_path)


def test_gaps_are_flagged(tmp_path):
    for i, z in enumerate([0.0, 1.0, 2.0, 5.0]):
        _slice(i, z, "1.2.3.6").save_as(tmp_path / f"s{i}.dcm", enforce_file_format=True)
    (image,) = read_dicom_series(tmp_path)
    assert image.meta["irregular_spacing"] and image.spacing[0] == pytest.approx(1.0)
