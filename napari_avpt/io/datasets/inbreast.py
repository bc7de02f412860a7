"""INbreast (full-field digital mammography) layout.

    AllDICOMs/{id}_{patient}_MG_{L|R}_{CC|ML}_ANON.dcm
    AllXML/{id}.xml        OsiriX plist: Images[0].ROIs[] with Name and
                           Point_px strings "(x, y)"; <= 2 points is a point ROI
    INbreast.csv           ';'-separated, one row per image, Bi-Rads 1..6 / 4a-4c

Class from BI-RADS: 1 normal, 2-3 benign, 4a-6 malignant (suspicious or
proven). Lesion masks are the polygons of mass ROIs; calcifications and
other point ROIs are kept in `meta["points"]` as (row, col).
"""

from __future__ import annotations

import csv
import plistlib
import re
from pathlib import Path

import numpy as np
from skimage.draw import polygon

from ...errors import AvptError
from ..dicom import read_dicom
from .record import Sample
from .truth import load_truth

FILE_NAME = re.compile(r"^(?P<id>\d+)_(?P<patient>[^_]+)_MG_(?P<lat>[LR])_(?P<view>CC|MLO|ML)_ANON\.dcm$", re.I)
LESION_ROI_NAMES = ("mass", "spiculated region", "espiculated region")
_NUMBER = re.compile(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")


def birads_to_class(birads: str) -> str:
    value = str(birads).strip().lower()
    if value.startswith("1"):
        return "normal"
    if value[:1] in ("2", "3"):
        return "benign"
    if value[:1] in ("4", "5", "6"):
        return "malignant"
    raise AvptError(f"INbreast: unknown Bi-Rads value {birads!r}")


def read_rois(xml_path: Path) -> list[dict]:
    """ROIs of an INbreast XML: name and (row, col) points."""
    try:
        with open(xml_path, "rb") as f:
            plist = plistlib.load(f)
    except Exception as e:  # plistlib raises several types on bad XML
        raise AvptError(f"Cannot read {xml_path.name}: not an OsiriX ROI plist ({e})") from None
    rois = []
    for image in plist.get("Images", [])[:1]:
        for roi in image.get("ROIs", []):
            points = []
            for text in roi.get("Point_px", []):
                numbers = [float(v) for v in _NUMBER.findall(str(text))]
                if len(numbers) >= 2:
                    points.append((numbers[1], numbers[0]))  # "(x, y)" -> (row, col)
            rois.append({"name": str(roi.get("Name", "")), "points": points})
    return rois


def read_csv(csv_path: Path) -> dict[str, dict]:
    """Rows of INbreast.csv keyed by file id (the 'File Name' column)."""
    text = csv_path.read_text(encoding="utf-8-sig", errors="replace")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    if not rows:
        raise AvptError(f"{csv_path.name} is empty")
    header = [h.strip().lower().replace("-", "").replace(" ", "") for h in rows[0]]
    try:
        i_file, i_birads = header.index("filename"), header.index("birads")
    except ValueError:
        raise AvptError(f"{csv_path.name}: expected 'File Name' and 'Bi-Rads' columns, found {rows[0]}") from None
    table = {}
    for row in rows[1:]:
        if len(row) > max(i_file, i_birads) and row[i_file].strip():
            table[row[i_file].strip()] = {h: v.strip() for h, v in zip(rows[0], row)} | {"Bi-Rads": row[i_birads]}
    return table


class InbreastDataset:
    """Lazy INbreast loader: `len()`, indexing and iteration give `Sample`s."""

    modality = "MG"

    def __init__(self, root, lesion_roi_names=LESION_ROI_NAMES):
        self.root = Path(root)
        dicoms = self.root / "AllDICOMs"
        if not dicoms.is_dir():
            raise AvptError(f"{self.root} is not an INbreast folder (no AllDICOMs/)")
        csv_path = next((p for p in self.root.glob("*.csv") if "inbreast" in p.name.lower()), None)
        if csv_path is None:
            raise AvptError(f"{self.root} has no INbreast.csv")
        self.table = read_csv(csv_path)
        self.lesion_roi_names = tuple(n.lower() for n in lesion_roi_names)
        self.files = []
        for p in sorted(dicoms.iterdir()):
            m = FILE_NAME.match(p.name)
            if m and m["id"] in self.table:
                self.files.append((m["id"], p, m))

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        file_id, path, match = self.files[index]
        image = read_dicom(path)
        label = birads_to_class(self.table[file_id]["Bi-Rads"])
        mask = np.zeros(image.data.shape[:2], np.uint8)
        points = []
        xml = self.root / "AllXML" / f"{file_id}.xml"
        rois = read_rois(xml) if xml.exists() else []
        for roi in rois:
            pts = np.array(roi["points"])
            if len(pts) <= 2:
                points.append({"name": roi["name"], "points": roi["points"]})
            elif roi["name"].strip().lower() in self.lesion_roi_names:
                rr, cc = polygon(pts[:, 0], pts[:, 1], mask.shape)
                mask[rr, cc] = 1
            else:
                points.append({"name": roi["name"], "points": roi["points"]})
        return Sample(
            id=file_id,
            image=image.data,
            spacing=image.spacing,
            modality="MG",
            label=label,
            lesion_mask=mask,
            tissue=load_truth(self.root, file_id, "tissue"),
            meta={
                "patient": match["patient"],
                "laterality": match["lat"].upper(),
                "view": match["view"].upper(),
                "birads": self.table[file_id]["Bi-Rads"],
                "points": points,
                "source_path": str(path),
                "window": image.window,
            },
        )
