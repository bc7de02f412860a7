"""A generic "images + masks" folder: how most users keep their own data.

    images/case_01.png   masks/case_01.png (or case_01_mask.png, mask_case_01.png)
    labels.csv           optional: image stem, class [, patient]

Any 2D raster the readers open (PNG, JPEG, TIFF, PGM) and any mask of the
same size (non-zero = lesion). An image without a mask, or with an empty
one, is lesion-free. The class comes from `labels.csv` (columns `id` or
`image`, `label` or `class` or `pathology`: normal / benign / malignant,
and an optional `patient` or `case`); without it a frame with a lesion is
taken as benign, and only its lesion mask is meaningful. The modality is
not in the files: the caller says it (`--data US:folder`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...errors import AvptError
from ...model.config import modality_code
from ..raster import RASTER_SUFFIXES, read_raster_array
from .busi import _as_gray, _as_mask
from .folds import fold_of
from .record import CLASSES, LazySamples, Sample

LABELS_CSV = "labels.csv"


def _subfolder(root: Path, name: str) -> Path | None:
    for p in root.iterdir():
        if p.is_dir() and p.name.lower() == name:
            return p
    return None


def is_image_mask_folder(root: Path) -> bool:
    return _subfolder(root, "images") is not None and _subfolder(root, "masks") is not None


def _rasters(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES}


def _read_labels(path: Path) -> dict[str, dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AvptError(f"{path.name}: cannot read it ({e})") from None
    out = {}
    for number, row in enumerate(rows, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        stem = row.get("id") or row.get("image")
        label = (row.get("label") or row.get("class") or row.get("pathology") or "").lower()
        if not stem or label not in CLASSES:
            raise AvptError(
                f"{path.name} line {number}: needs an image id and a class (normal, benign or malignant), got {row}"
            )
        out[Path(stem).stem] = {"label": label, "patient": row.get("patient") or row.get("case") or ""}
    return out


class ImageMaskFolder(LazySamples):
    """Lazy loader of an images/ + masks/ folder of one modality."""

    def __init__(self, root, modality: str | None, folds: set[int] | None = None):
        self.root = Path(root)
        if modality is None:
            raise AvptError(
                f"{self.root}: an images + masks folder does not say its modality: "
                f"give it before the path, e.g. --data US:{self.root}"
            )
        code = modality_code(modality)
        if code is None:
            raise AvptError(f"unknown modality {modality!r}: choose MG (mammogram), US (ultrasound) or MR (MRI)")
        self.modality = code
        images, masks = _subfolder(self.root, "images"), _subfolder(self.root, "masks")
        if images is None or masks is None:
            raise AvptError(f"{self.root} has no images/ and masks/ folders")
        mask_files = _rasters(masks)
        labels = _read_labels(self.root / LABELS_CSV) if (self.root / LABELS_CSV).is_file() else {}
        self.items = []
        for stem, path in _rasters(images).items():
            mask = next((mask_files[s] for s in (stem, f"{stem}_mask", f"mask_{stem}") if s in mask_files), None)
            known = labels.get(stem, {})
            patient = known.get("patient") or stem
            fold = fold_of(f"{self.root.name}-{patient}")
            if folds and fold not in folds:
                continue
            self.items.append({"id": stem, "path": path, "mask": mask, "patient": patient, "fold": fold, **known})
        if not self.items:
            which = f" for folds {sorted(folds)}" if folds else ""
            raise AvptError(f"{self.root}: no images in {images.name}/{which}")

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        data, spacing = read_raster_array(item["path"])
        image = _as_gray(data)
        mask = np.zeros(image.shape, bool)
        if item["mask"] is not None:
            mask = _as_mask(read_raster_array(item["mask"])[0])
            if mask.shape != image.shape:
                raise AvptError(
                    f"{item['mask'].name} is {mask.shape[1]}x{mask.shape[0]} but its image is "
                    f"{image.shape[1]}x{image.shape[0]}: they must match"
                )
        label = item.get("label") or ("benign" if mask.any() else "normal")
        return Sample(
            id=item["id"],
            image=image,
            spacing=spacing or (1.0, 1.0),
            modality=self.modality,
            label=label,
            lesion_mask=mask.astype(np.uint8),
            meta={
                "source_path": str(item["path"]),
                "spacing_known": spacing is not None,
                "patient": item["patient"],
                "fold": item["fold"],
                "class_known": "label" in item,
            },
        )
