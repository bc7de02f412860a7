"""Duke-Breast-Cancer-MRI layout (as downloaded from TCIA).

    Breast_MRI_001/<study>/<series>/1-001.dcm ...   DICOM series per phase
    Annotation_Boxes.xlsx   Patient ID, Start/End Row, Start/End Column,
                            Start/End Slice (1-based, inclusive)

Dynamic phases are recognised from SeriesDescription ("ax dyn pre",
"ax dyn 1st pass", ...): `pre`, then `post_1`..`post_n` in series-number
order. Box slice numbers count slices in the order the reader sorts them
(along the slice normal, inferior -> superior for axial scans), rows and
columns are DICOM rows and columns. Every Duke patient has a cancer: a
patient with a box is `malignant`, one without is `normal`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import AvptError
from ..dicom import find_dicom_files, read_dicom_series
from .record import Sample
from .truth import load_truth

BOX_FILE = "Annotation_Boxes.xlsx"
_POST = re.compile(r"(1st|2nd|3rd|4th|\dth|post|pass|ph\d)", re.I)
_BOX_COLUMNS = ("patient id", "start row", "end row", "start column", "end column", "start slice", "end slice")


def phase_of(description: str) -> str | None:
    """'pre' or 'post' for a dynamic series description, None otherwise."""
    text = description.lower()
    if "pre" in text:
        return "pre"
    if "dyn" in text or _POST.search(text):
        return "post"
    return None


def the_pre_contrast(candidates, describe):
    """The one candidate whose description (`describe(c)`) reads as the
    pre-contrast phase, else None (none, or several: the user chooses)."""
    found = [c for c in candidates if phase_of(describe(c)) == "pre"]
    return found[0] if len(found) == 1 else None


def read_boxes(path: Path) -> dict[str, list[tuple[tuple[int, int], ...]]]:
    """Annotation_Boxes.xlsx -> {patient id: [((z0, z1), (r0, r1), (c0, c1))]},
    0-based with exclusive ends."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zip, XML and key errors on bad files
        raise AvptError(f"Cannot read {path.name}: not an Excel workbook ({e})") from None
    rows = list(wb.active.iter_rows(values_only=True))
    wb.close()
    if not rows:
        raise AvptError(f"{path.name} is empty")
    header = [str(h or "").strip().lower() for h in rows[0]]
    try:
        idx = [header.index(c) for c in _BOX_COLUMNS]
    except ValueError:
        raise AvptError(f"{path.name}: expected columns {', '.join(_BOX_COLUMNS)}; found {rows[0]}") from None
    boxes: dict[str, list] = {}
    for row in rows[1:]:
        if row is None or row[idx[0]] in (None, ""):
            continue
        pid = str(row[idx[0]]).strip()
        r0, r1, c0, c1, z0, z1 = (int(row[i]) for i in idx[1:])
        boxes.setdefault(pid, []).append(((z0 - 1, z1), (r0 - 1, r1), (c0 - 1, c1)))
    return boxes


class DukeDataset:
    """Lazy Duke loader. `phase` picks the volume of `Sample.image`
    (default the first post-contrast phase); `extra_phases` are also read
    into `meta["phases"]` (by default the pre-contrast one: the model sees
    the subtraction)."""

    modality = "MR"

    def __init__(self, root, phase: str = "post_1", extra_phases: tuple[str, ...] = ("pre",)):
        self.root = Path(root)
        box_file = next((p for p in (self.root / BOX_FILE, self.root.parent / BOX_FILE) if p.exists()), None)
        if box_file is None:
            raise AvptError(f"{self.root} is not a Duke folder (no {BOX_FILE})")
        self.boxes = read_boxes(box_file)
        self.phase, self.extra_phases = phase, tuple(extra_phases)
        self.patients = sorted(
            p
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(("_", ".")) and find_dicom_files(p, limit=1)
        )
        if not self.patients:
            raise AvptError(f"{self.root} holds no patient folders with DICOM series")

    def __len__(self) -> int:
        return len(self.patients)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        folder = self.patients[index]
        series = read_dicom_series(
            folder, select=lambda ds: phase_of(str(getattr(ds, "SeriesDescription", ""))) is not None
        )
        phases = {}
        posts = []
        for s in series:  # sorted by series number
            kind = phase_of(s.name)
            if kind == "pre" and "pre" not in phases:
                phases["pre"] = s
            elif kind == "post":
                posts.append(s)
        for i, s in enumerate(posts, 1):
            phases[f"post_{i}"] = s
        if self.phase not in phases:
            raise AvptError(f"Duke {folder.name}: no '{self.phase}' series (found {', '.join(phases) or 'none'})")
        main = phases[self.phase]
        pid = folder.name
        boxes = self.boxes.get(pid, [])
        lesion = load_truth(self.root, pid, "lesion")
        return Sample(
            id=pid,
            image=main.data,
            spacing=main.spacing,
            modality="MR",
            label="malignant" if boxes else "normal",
            lesion_mask=lesion,
            lesion_boxes=boxes,
            tissue=load_truth(self.root, pid, "tissue"),
            meta={
                "phase": self.phase,
                "phases": {k: phases[k].data for k in self.extra_phases if k in phases},
                "available_phases": list(phases),
                "origin": main.origin,
                "affine": main.meta.get("affine"),
                "source_path": str(folder),
            },
        )
