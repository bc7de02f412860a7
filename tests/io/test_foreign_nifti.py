"""Our NIfTI reader on files written by other software (nibabel's test data)."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_avpt.io as avpt_io

DATA = Path(nib.__file__).parent / "tests" / "data"


@pytest.mark.parametrize("name", ["anatomical.nii", "standard.nii.gz", "example4d.nii.gz", "example_nifti2.nii.gz"])
def test_foreign_nifti_keeps_voxels_and_spacing(name):
    path = DATA / name
    assert path.exists(), f"nibabel's test file {name} is missing"
    (image,) = avpt_io.read_path(path)
    img = nib.load(path)
    assert image.data.dtype.isnative
    assert image.data.size == np.prod(img.shape)
    assert sorted(image.spacing[-3:]) == pytest.approx(sorted(float(z) for z in img.header.get_zooms()[:3]), rel=1e-4)
    # Same voxels, only reordered and flipped: identical value histograms.
    assert np.array_equal(np.sort(image.data.ravel()), np.sort(np.asanyarray(img.dataobj).ravel()))
    if img.ndim == 4:
        assert image.data.shape[0] == img.shape[3]
