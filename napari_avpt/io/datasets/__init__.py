"""Dataset loaders for the three layouts of the method, one `Sample` record."""

from __future__ import annotations

from pathlib import Path

from ...errors import AvptError
from .busi import BusiDataset
from .duke import DukeDataset
from .inbreast import InbreastDataset
from .record import CLASSES, Sample

__all__ = ["BusiDataset", "DukeDataset", "InbreastDataset", "Sample", "CLASSES", "open_dataset"]

FORMATS = {"inbreast": InbreastDataset, "busi": BusiDataset, "duke": DukeDataset}


def open_dataset(root, fmt: str | None = None):
    """Open a dataset folder; the layout is recognised when `fmt` is None."""
    root = Path(root)
    if not root.is_dir():
        raise AvptError(f"{root} is not a folder")
    if fmt is not None:
        if fmt not in FORMATS:
            raise AvptError(f"unknown dataset format {fmt!r} (choose from {', '.join(FORMATS)})")
        return FORMATS[fmt](root)
    if (root / "AllDICOMs").is_dir():
        return InbreastDataset(root)
    if (root / "Annotation_Boxes.xlsx").exists():
        return DukeDataset(root)
    if any((root / c).is_dir() for c in CLASSES):
        return BusiDataset(root)
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    if len(subdirs) == 1:  # e.g. Dataset_BUSI_with_GT/ inside a download folder
        return open_dataset(subdirs[0])
    raise AvptError(f"{root} is not an INbreast, BUSI or Duke dataset folder")
