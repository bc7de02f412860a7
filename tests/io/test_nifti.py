import gzip

import nibabel as nib
import numpy as np
import pytest

from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.nifti import read_nifti, write_nifti


def test_round_trip_keeps_array_spacing_and_origin(tmp_path, small_mri):
    path = tmp_path / "vol.nii.gz"
    write_nifti(path, small_mri.image, small_mri.spacing, origin_lps=(-10.0, -20.0, -30.0))
    image = read_nifti(path)
    assert np.array_equal(image.data, small_mri.image)
    assert image.spacing == pytest.approx(small_mri.spacing)
    assert image.origin == pytest.approx((-30.0, -20.0, -10.0))  # (S, P, L) order
    assert image.meta["acquisition_axis"] == 0


def test_ras_file_is_reoriented_to_radiological_axial(tmp_path):
    # A RAS+ volume (as many tools write): i -> right-to-left flipped, etc.
    data = np.zeros((4, 5, 6), np.int16)  # i (x: R->L is -), j (y: P->A), k (z: I->S)
    data[0, 0, 0] = 1  # RAS: smallest x, y, z = most left, posterior, inferior
    data[3, 4, 5] = 2  # most right, anterior, superior
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (-3.0, -6.0, -10.0)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "ras.nii")
    image = read_nifti(tmp_path / "ras.nii")
    assert image.data.shape == (6, 5, 4)  # (S, P, L)
    assert image.spacing == pytest.approx((4.0, 3.0, 2.0))
    # Voxel 1 (left, posterior, inferior): first slice, last row, last column.
    assert image.data[0, 4, 3] == 1
    # Voxel 2 (right, anterior, superior): last slice, first row, first column.
    assert image.data[5, 0, 0] == 2
    assert image.meta["original_axcodes"] == "RAS"
    # The affine maps display voxels to LPS millimetres: RAS (-3, -6, -10) is LPS (3, 6, -10).
    aff = np.array(image.meta["affine"])
    assert (aff @ np.array([0, 4, 3, 1]))[:3] == pytest.approx((3.0, 6.0, -10.0))


def test_sagittal_acquisition_axis_is_recorded(tmp_path):
    # Sagittal slices: the file's k axis runs left-right (x), 3 mm apart.
    data = np.zeros((8, 9, 3), np.float32)  # i: A-P, j: S-I, k: R-L
    affine = np.array([[0, 0, 3.0, 0], [0.8, 0, 0, 0], [0, 0.7, 0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "sag.nii.gz")
    image = read_nifti(tmp_path / "sag.nii.gz")
    assert image.data.shape == (9, 8, 3)  # (S, P, L)
    assert image.spacing == pytest.approx((0.7, 0.8, 3.0))
    assert image.meta["acquisition_axis"] == 2  # slices were acquired along the columns' axis


def test_4d_keeps_an_extra_axis(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    nib.save(nib.Nifti1Image(data, np.diag([-1.0, -1.0, 2.0, 1.0])), tmp_path / "t.nii")
    image = read_nifti(tmp_path / "t.nii")
    assert image.data.shape == (5, 4, 3, 2)  # (t, S, P, L)
    assert len(image.spacing) == 4 and image.spacing[0] == 1.0


def test_corrupt_nifti(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(gzip.compress(b"\x00" * 100))
    with pytest.raises(AvptError, match=r"bad\.nii\.gz: not a readable NIfTI"):
        read_path(bad)
