"""NIfTI volumes (.nii, .nii.gz) -> `LoadedImage`.

Convention (the same as the DICOM reader's for axial series): the volume is
reoriented, by axis permutation and flips only (no resampling), to the
closest LPS voxel axes and shown as (S, P, L): slice index increases toward
superior, rows run anterior -> posterior and columns patient right -> left.
An axial slice therefore appears as radiologists read it (anterior up,
patient's right on the left of the screen). The original file's slice axis
is recorded in `meta["acquisition_axis"]` so volumes can be processed along
the axis they were acquired on. 4D files keep their extra axis first.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

from ..errors import AvptError
from .image import LoadedImage, default_window

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nifti_path(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return name.endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | os.PathLike, name: str | None = None, labels: bool = False) -> LoadedImage:
    path = Path(path)
    try:
        img = nib.load(str(path))
        raw = np.asanyarray(img.dataobj)
    except (ImageFileError, OSError, EOFError, ValueError, TypeError) as e:
        text = str(e).strip().splitlines()
        reason = text[0] if text else type(e).__name__
        raise AvptError(f"Cannot read {path.name}: not a readable NIfTI file ({reason})") from None
    if raw.ndim < 2 or raw.ndim > 4:
        raise AvptError(f"Cannot read {path.name}: {raw.ndim}D NIfTI images are not supported (2D, 3D or 4D)")
    if raw.ndim == 2:
        raw = raw[:, :, None]
    affine = img.affine
    spatial = raw if raw.ndim == 3 else np.moveaxis(raw, 3, 0)
    # Reorient spatial axes i, j, k to L, P, S (LPS+), then show as (S, P, L).
    current = io_orientation(affine)
    transform = ornt_transform(current, axcodes2ornt(("L", "P", "S")))
    slice_axis_in_file = 2
    new_axis_of_k = int(transform[slice_axis_in_file, 0])  # where the file's k axis goes (0=L,1=P,2=S)
    if spatial.ndim == 3:
        oriented = apply_orientation(spatial, transform)
        data = np.transpose(oriented, (2, 1, 0))
    else:
        oriented = np.stack([apply_orientation(v, transform) for v in spatial])
        data = np.transpose(oriented, (0, 3, 2, 1))
    new_affine_ras = affine @ inv_ornt_aff(transform, spatial.shape[-3:])
    affine_lps = _RAS_TO_LPS @ new_affine_ras  # voxel (L, P, S index) -> LPS mm
    zooms = np.sqrt((new_affine_ras[:3, :3] ** 2).sum(axis=0))  # spacing along L, P, S voxel axes
    spacing = (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    origin_lps = affine_lps[:3, 3]
    origin = (float(origin_lps[2]), float(origin_lps[1]), float(origin_lps[0]))
    # Voxel (s, p, l) -> LPS: permute the affine's columns to the display order.
    display_affine = affine_lps[:, [2, 1, 0, 3]]
    if data.ndim == 4:
        spacing = (1.0, *spacing)
        origin = (0.0, *origin)
    data = np.ascontiguousarray(data)
    if not data.dtype.isnative:  # big-endian files: napari and torch want native order
        data = data.astype(data.dtype.newbyteorder("="))
    if not labels and data.dtype == np.float64:
        data = data.astype(np.float32)
    meta = {
        "source_path": str(path),
        "affine": display_affine.tolist(),
        "orientation": "LPS (slice S, row P, col L)",
        "acquisition_axis": {2: 0, 1: 1, 0: 2}[new_axis_of_k] + (1 if data.ndim == 4 else 0),
        "spacing_known": bool(np.all(zooms > 0)),
        "original_axcodes": "".join(nib.aff2axcodes(affine)),
        "modality_assumed": True,  # NIfTI carries no modality; breast volumes here are MRI
    }
    stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    return LoadedImage(
        data=data,
        spacing=spacing,
        name=name or stem,
        modality="MR",
        origin=origin,
        window=None if labels else default_window(data),
        labels=labels,
        meta=meta,
    )


def write_nifti(
    path: str | os.PathLike, data: np.ndarray, spacing=None, origin_lps=None, affine_lps=None, stored_as=None
) -> None:
    """Write a (slice, row, col) volume as NIfTI, atomically; `stored_as`:
    the file's data type when it is not the array's (floats kept as scaled
    8-bit integers: a quarter of the size).

    The voxel -> patient placement is `affine_lps` (4x4, voxel (slice, row,
    col) -> LPS mm, as in our readers' `meta["affine"]`), or else this
    module's (S, P, L) convention with `spacing` and `origin_lps` (the first
    voxel's position).
    """
    from .files import write_bytes_atomic

    if affine_lps is None:
        ds, dr, dc = (float(s) for s in spacing[-3:])
        x0, y0, z0 = (0.0, 0.0, 0.0) if origin_lps is None else (float(v) for v in origin_lps)
        affine_lps = np.array([[0, 0, dc, x0], [0, dr, 0, y0], [ds, 0, 0, z0], [0, 0, 0, 1]], float)
    affine_lps = np.asarray(affine_lps, float)
    # Stored as (col, row, slice) = (i, j, k); NIfTI's world is RAS.
    affine = _RAS_TO_LPS @ affine_lps[:, [2, 1, 0, 3]]
    volume = np.transpose(np.asarray(data), (2, 1, 0))
    img = nib.Nifti1Image(volume, affine)
    img.header.set_xyzt_units("mm")
    if stored_as is not None:  # e.g. uint8: nibabel scales the floats into it (scl_slope) and readers get floats back
        img.set_data_dtype(stored_as)
    data = img.to_bytes()
    if str(path).endswith(".gz"):
        import gzip

        # mtime=0: the same volume gives the same file (nibabel's own writer stamps the time).
        data = gzip.compress(data, compresslevel=4, mtime=0)
    write_bytes_atomic(path, data)
