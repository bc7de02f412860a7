"""mini-MIAS (Mammographic Image Analysis Society, Suckling et al. 1994) layout.

    mdbNNN.pgm (as released) or mdbNNN.png   1024 x 1024, 8-bit, 200 µm pixels
    Info.txt   one row per finding: name tissue class [severity [x y radius]]

How the rows are used:

- Class NORM: a lesion-free image (label normal).
- A mass or other localised finding (CIRC, SPIC, MISC, ARCH, ASYM) with a
  centre: its circle (`radius` encloses it) is painted as the lesion. The
  truth is a circle, not a contour: score with `found` (a drawn lesion
  overlaps the circle) rather than Dice alone.
- CALC (calcification clusters) is not a mass: nothing is painted, the
  image keeps its class, and the circle is kept in `meta["findings"]` so
  that a lesion drawn on the cluster is not counted as a false one.
- A localised finding without a centre (the release omits it for a few):
  the image is left out (`skipped`), since its lesion cannot be placed.
- An image's label is malignant if any finding is, else benign, else normal.

`y` has its origin at the bottom-left (image row = height - y). Images come
in pairs, left and right of one woman (mdb001/mdb002 ...): that is the
patient, and the fold (`folds.fold_of`) is the patient's.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import AvptError
from ..raster import MIAS_SPACING, read_raster_array
from .folds import fold_of
from .record import LazySamples, Sample

INFO = "Info.txt"
_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]+)\s*(.*)$", re.IGNORECASE)
MASS_CLASSES = ("CIRC", "SPIC", "MISC")  # what "masses found" counts
LOCALISED = (*MASS_CLASSES, "ARCH", "ASYM")  # painted as the lesion
KNOWN_CLASSES = (*LOCALISED, "CALC", "NORM")
TISSUE = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}


def is_mias(root: Path) -> bool:
    return (root / INFO).is_file() and any(root.glob("mdb[0-9][0-9][0-9].*"))


def parse_info(path: Path) -> dict[str, dict]:
    """{name: {"tissue", "findings": [{class, severity, x, y, radius}]}};
    lines that are not finding rows (headers, notes) are passed over."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as e:
        raise AvptError(f"mini-MIAS: cannot read {path.name} ({e})") from None
    images: dict[str, dict] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _ROW.match(line.strip())
        if not m:
            continue
        name, tissue, cls, rest = m.group(1).lower(), m.group(2).upper(), m.group(3).upper(), m.group(4).split()
        if cls not in KNOWN_CLASSES:
            raise AvptError(f"mini-MIAS: {path.name} line {number}: unknown class {cls!r}")
        finding = {"class": cls, "severity": None, "x": None, "y": None, "radius": None}
        if rest and rest[0].upper() in ("B", "M"):
            finding["severity"] = rest.pop(0).upper()
        if len(rest) >= 3:
            try:
                finding["x"], finding["y"], finding["radius"] = (float(v) for v in rest[:3])
            except ValueError:
                raise AvptError(f"mini-MIAS: {path.name} line {number}: bad centre/radius {' '.join(rest)!r}") from None
        entry = images.setdefault(name, {"tissue": TISSUE[tissue], "findings": []})
        if cls != "NORM":
            entry["findings"].append(finding)
    if not images:
        raise AvptError(f"mini-MIAS: {path.name} has no finding rows (name tissue class ...)")
    return images


def circle_mask(shape: tuple[int, int], findings: list[dict], classes=LOCALISED) -> np.ndarray:
    """The findings' circles (image rows from the bottom-left origin)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for f in findings:
        if f["class"] in classes and f["x"] is not None:
            r, c = shape[0] - f["y"], f["x"]
            mask |= (rows - r) ** 2 + (cols - c) ** 2 <= f["radius"] ** 2
    return mask


def _label(findings: list[dict]) -> str:
    if not findings:
        return "normal"
    return "malignant" if any(f["severity"] == "M" for f in findings) else "benign"


class MiasDataset(LazySamples):
    """Lazy mini-MIAS loader (`.pgm` as released, or `.png`): `len()`,
    indexing and iteration give `Sample`s; `folds` keeps only those folds.
    Images listed in Info.txt but not in the folder are passed over
    (`missing`), as are images left out for an unplaced finding (`skipped`)."""

    modality = "MG"

    def __init__(self, root, folds: set[int] | None = None):
        self.root = Path(root)
        if not (self.root / INFO).is_file():
            raise AvptError(f"{self.root} is not a mini-MIAS folder (no {INFO})")
        info = parse_info(self.root / INFO)
        files = {}
        for p in self.root.glob("mdb[0-9][0-9][0-9].*"):
            if p.suffix.lower() in (".pgm", ".png"):
                files.setdefault(p.stem.lower(), p)
        self.items, self.missing, self.skipped = [], [], []
        for name in sorted(info):
            entry = info[name]
            if name not in files:
                self.missing.append(name)
                continue
            if any(f["class"] in LOCALISED and f["x"] is None for f in entry["findings"]):
                self.skipped.append((name, "a mass without a centre in Info.txt"))
                continue
            patient = (int(name[3:]) + 1) // 2
            fold = fold_of(f"mias-{patient}")
            if folds and fold not in folds:
                continue
            self.items.append({"id": name, "path": files[name], "patient": f"mias-{patient}", "fold": fold, **entry})
        if not self.items:
            raise AvptError(
                f"mini-MIAS: no image of {INFO} found in {self.root}" + (f" for folds {sorted(folds)}" if folds else "")
            )

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        data, spacing = read_raster_array(item["path"])
        if data.ndim != 2:
            data = data[..., :3].mean(axis=-1).astype(data.dtype)
        if spacing is None and data.shape == (1024, 1024):
            spacing = MIAS_SPACING
        findings = item["findings"]
        return Sample(
            id=item["id"],
            image=data,
            spacing=spacing or (1.0, 1.0),
            modality="MG",
            label=_label(findings),
            lesion_mask=circle_mask(data.shape, findings).astype(np.uint8),
            meta={
                "source_path": str(item["path"]),
                "spacing_known": spacing is not None,
                "patient": item["patient"],
                "fold": item["fold"],
                "tissue_type": item["tissue"],
                "findings": findings,
            },
        )
