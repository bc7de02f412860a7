"""Sidecar ground truth written beside a phantom dataset (`_truth/`).

Real datasets do not have tissue maps, and Duke only boxes its lesions; our
phantom datasets add `_truth/{id}_tissue.*` and `_truth/{id}_lesion.*` (PNG
for 2D, NIfTI for 3D) so that anatomy priors and segmentation can be
measured on them. Loaders pick them up when present and ignore their absence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nifti import read_nifti
from ..raster import read_raster_array

TRUTH_DIR = "_truth"


def load_truth(root: Path, sample_id: str, kind: str) -> np.ndarray | None:
    folder = Path(root) / TRUTH_DIR
    png = folder / f"{sample_id}_{kind}.png"
    if png.exists():
        return read_raster_array(png)[0].astype(np.uint8)
    nii = folder / f"{sample_id}_{kind}.nii.gz"
    if nii.exists():
        return np.asarray(read_nifti(nii, labels=True).data, dtype=np.uint8)
    return None
