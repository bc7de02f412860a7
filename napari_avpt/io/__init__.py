"""Reading breast images from disk: DICOM files and series, NIfTI, PNG/JPEG,
and the INbreast / BUSI / Duke dataset layouts (`io.datasets`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AvptError
from .dicom import find_dicom_files, looks_like_dicom, read_dicom, read_dicom_series
from .image import LoadedImage
from .nifti import is_nifti_path, read_nifti
from .raster import is_raster_path, read_raster

__all__ = ["LoadedImage", "can_read", "read_path", "read_dicom", "read_dicom_series", "read_nifti", "read_raster"]


def can_read(path: str | os.PathLike) -> bool:
    """Cheap test (no decoding) whether `read_path` will try this path."""
    path = Path(path)
    if path.is_dir():
        # Bounded: a dataset root holds patient/study/series/file at most.
        return bool(find_dicom_files(path, limit=1, max_depth=4))
    return is_nifti_path(path) or is_raster_path(path) or looks_like_dicom(path)


def read_path(path: str | os.PathLike) -> list[LoadedImage]:
    """Read a file or a DICOM folder; raises `AvptError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise AvptError(f"Cannot read {path}: no such file or folder")
    if path.is_dir():
        return read_dicom_series(path)
    if is_nifti_path(path):
        return [read_nifti(path)]
    if is_raster_path(path):
        return [read_raster(path)]
    if looks_like_dicom(path):
        from .dicom_seg import read_seg_alone, seg_file

        return read_seg_alone(path) if seg_file(path) else [read_dicom(path)]
    raise AvptError(f"Cannot read {path.name}: not a DICOM, NIfTI, PNG or JPEG file")
