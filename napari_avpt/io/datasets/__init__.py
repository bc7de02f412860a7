"""Dataset loaders, one `Sample` record: the layouts of the method (INbreast,
BUSI, Duke), the real public sets the default weights learn from (BUS-BRA,
mini-MIAS), and a generic images + masks folder."""

from __future__ import annotations

from pathlib import Path

from ...errors import AvptError
from .busbra import BusBraDataset, is_busbra
from .busi import BusiDataset
from .duke import DukeDataset
from .folder import ImageMaskFolder, is_image_mask_folder
from .inbreast import InbreastDataset
from .mias import MiasDataset, is_mias
from .record import CLASSES, Sample

__all__ = [
    "BusBraDataset",
    "BusiDataset",
    "DukeDataset",
    "ImageMaskFolder",
    "InbreastDataset",
    "MiasDataset",
    "Sample",
    "CLASSES",
    "is_image_mask_folder",
    "open_dataset",
]

FORMATS = {
    "inbreast": InbreastDataset,
    "busi": BusiDataset,
    "duke": DukeDataset,
    "busbra": BusBraDataset,
    "mias": MiasDataset,
    "folder": ImageMaskFolder,
}
# Layouts with patient-level folds (`folds=`): published ones or `folds.fold_of`.
WITH_FOLDS = ("busbra", "mias", "folder")


def _detect(root: Path) -> str | None:
    if (root / "AllDICOMs").is_dir():
        return "inbreast"
    if (root / "Annotation_Boxes.xlsx").exists():
        return "duke"
    if is_busbra(root):
        return "busbra"
    if is_mias(root):
        return "mias"
    if is_image_mask_folder(root):
        return "folder"
    if any((root / c).is_dir() for c in CLASSES):
        return "busi"
    return None


def open_dataset(root, fmt: str | None = None, folds: set[int] | None = None, modality: str | None = None):
    """Open a dataset folder; the layout is recognised when `fmt` is None.
    `folds` keeps those patient-level folds (BUS-BRA, mini-MIAS, images +
    masks folders); `modality` is what an images + masks folder holds."""
    root = Path(root)
    if not root.is_dir():
        raise AvptError(f"{root} is not a folder")
    if fmt is None:
        fmt = _detect(root)
        if fmt is None:
            subdirs = [p for p in root.iterdir() if p.is_dir()]
            if len(subdirs) == 1:  # e.g. Dataset_BUSI_with_GT/ inside a download folder
                return open_dataset(subdirs[0], None, folds, modality)
            raise AvptError(
                f"{root} is not a dataset folder (INbreast, BUSI, Duke, BUS-BRA, mini-MIAS, or images/ + masks/)"
            )
    if fmt not in FORMATS:
        raise AvptError(f"unknown dataset format {fmt!r} (choose from {', '.join(FORMATS)})")
    if folds and fmt not in WITH_FOLDS:
        raise AvptError(f"{root}: a {fmt} folder has no patient folds (only {', '.join(WITH_FOLDS)} do)")
    if fmt == "folder":
        return ImageMaskFolder(root, modality, folds)
    if modality is not None and modality != getattr(FORMATS[fmt], "modality", modality):
        raise AvptError(f"{root} is a {fmt} folder of {FORMATS[fmt].modality} images, not {modality}")
    return FORMATS[fmt](root, folds) if fmt in WITH_FOLDS else FORMATS[fmt](root)
