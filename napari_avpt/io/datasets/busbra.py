"""BUS-BRA (breast ultrasound, Gómez-Flores et al., Medical Physics 2024) layout.

    Images/bus_NNNN-{l,r,s}.png      8-bit gray B-mode frames
    Masks/mask_NNNN-{l,r,s}.png      one lesion mask per frame
    bus_data.csv                     ID, Case, Histology, Pathology, BIRADS, Device, ..., BBOX
    5-fold-cv.csv                    the authors' patient-level folds (kFold)

`Case` is the patient: every frame of one case carries the same `patient`
(train/validation splits keep it whole) and, from `5-fold-cv.csv`, the
same `fold`. The class is the histological pathology (benign or
malignant); BUS-BRA has no lesion-free frame. No pixel size is given.
Image size comes from the PNG (a few `Width`/`Height` rows disagree).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...errors import AvptError
from ..raster import read_raster_array
from .busi import _as_gray, _as_mask
from .record import LazySamples, Sample
from .truth import load_truth

DATA_CSV = "bus_data.csv"
FOLDS_CSV = "5-fold-cv.csv"


def is_busbra(root: Path) -> bool:
    return (root / DATA_CSV).is_file() and (root / "Images").is_dir()


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AvptError(f"BUS-BRA: cannot read {path.name} ({e})") from None


class BusBraDataset(LazySamples):
    """Lazy BUS-BRA loader: `len()`, indexing and iteration give `Sample`s,
    in the order of `bus_data.csv`; `folds` keeps only those folds."""

    modality = "US"

    def __init__(self, root, folds: set[int] | None = None):
        self.root = Path(root)
        if not is_busbra(self.root):
            raise AvptError(f"{self.root} is not a BUS-BRA folder (no {DATA_CSV} beside Images/)")
        fold_of = {}
        if (self.root / FOLDS_CSV).is_file():
            for row in _read_csv(self.root / FOLDS_CSV):
                try:
                    fold_of[row["ID"].strip()] = int(row["kFold"])
                except (KeyError, ValueError):
                    raise AvptError(f"BUS-BRA: {FOLDS_CSV} needs ID and kFold columns") from None
        elif folds:
            raise AvptError(f"BUS-BRA: folds were asked for but {self.root} has no {FOLDS_CSV}")
        self.items = []
        for row in _read_csv(self.root / DATA_CSV):
            try:
                frame_id, case, pathology = row["ID"].strip(), row["Case"].strip(), row["Pathology"].strip().lower()
            except (KeyError, AttributeError):
                raise AvptError(f"BUS-BRA: {DATA_CSV} needs ID, Case and Pathology columns") from None
            if pathology not in ("benign", "malignant"):
                raise AvptError(f"BUS-BRA: {frame_id} has an unknown pathology {row['Pathology']!r}")
            fold = fold_of.get(frame_id)
            if folds and fold not in folds:
                continue
            self.items.append(
                {
                    "id": frame_id,
                    "patient": f"busbra-{case}",
                    "label": pathology,
                    "fold": fold,
                    "birads": row.get("BIRADS", "").strip(),
                    "device": row.get("Device", "").strip(),
                    "histology": row.get("Histology", "").strip(),
                }
            )
        if not self.items:
            raise AvptError(f"BUS-BRA: no frames in {self.root}" + (f" for folds {sorted(folds)}" if folds else ""))

    def paths(self, index: int) -> tuple[Path, Path]:
        frame_id = self.items[index]["id"]
        stem = frame_id[len("bus_") :] if frame_id.startswith("bus_") else frame_id
        return self.root / "Images" / f"{frame_id}.png", self.root / "Masks" / f"mask_{stem}.png"

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        image_path, mask_path = self.paths(index)
        if not image_path.is_file():
            raise AvptError(f"BUS-BRA: {item['id']} is listed in {DATA_CSV} but Images/{image_path.name} is missing")
        image = _as_gray(read_raster_array(image_path)[0])
        if not mask_path.is_file():
            raise AvptError(f"BUS-BRA: the mask of {item['id']} (Masks/{mask_path.name}) is missing")
        mask = _as_mask(read_raster_array(mask_path)[0])
        if mask.shape != image.shape:
            raise AvptError(f"BUS-BRA: {mask_path.name} is {mask.shape[::-1]} but its image is {image.shape[::-1]}")
        return Sample(
            id=item["id"],
            image=image,
            spacing=(1.0, 1.0),
            modality="US",
            label=item["label"],
            lesion_mask=mask.astype(np.uint8),
            tissue=load_truth(self.root, item["id"], "tissue"),  # only beside our phantoms
            meta={
                "source_path": str(image_path),
                "masks": [str(mask_path)],
                "spacing_known": False,
                **{k: item[k] for k in ("patient", "fold", "birads", "device", "histology")},
            },
        )
