"""Writing segmentation results on the input's grid, atomically.

2D: lesion labels (16-bit PNG), tissue labels (8-bit PNG), attention maps
(8-bit TIFF, 0-255 for 0-1, compressed), all with the image's pixel size as
resolution. 3D: the same as NIfTI with the input's voxel-to-patient
placement (attention as 8-bit integers with a scale, so that readers get
0-1 back). Always a JSON with the class probabilities and lesion sizes, and
an overlay PNG to look at. Attention maps are a quarter the size of float32
ones: a 160 x 448 x 448 volume's were 47 MB each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from ..errors import AvptError
from ..widgets.display import TISSUE_COLORS
from .files import atomic_file, write_text_atomic
from .image import LoadedImage
from .nifti import write_nifti


def _png(path: Path, array: np.ndarray, spacing) -> None:
    img = Image.fromarray(array)  # uint16 becomes a 16-bit PNG, uint8 an 8-bit one
    with atomic_file(path) as handle:
        img.save(handle, format="PNG", dpi=(25.4 / spacing[-1], 25.4 / spacing[-2]))


def _tiff(path: Path, array: np.ndarray, spacing) -> None:
    """A map in [0, 1] as 8-bit (0-255), zlib-compressed."""
    scaled = np.empty(array.shape, np.uint8)
    for r in range(0, array.shape[0], 2048):  # by bands: no float copy of a very large image
        scaled[r : r + 2048] = np.clip(np.asarray(array[r : r + 2048], np.float32) * 255 + 0.5, 0, 255)
    with atomic_file(path) as handle:
        tifffile.imwrite(
            handle,
            scaled,
            compression="zlib",
            resolution=(10 / spacing[-1], 10 / spacing[-2]),
            resolutionunit="CENTIMETER",
        )


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], np.float32)


OVERLAY_SIDE = 4096  # the overlay is a picture to look at: at most this many pixels a side


def overlay_rgb(image2d: np.ndarray, lesion2d: np.ndarray, tissue2d: np.ndarray) -> np.ndarray:
    """Gray image, tissue regions tinted, lesion outlines in red; of a very
    large image, a copy of at most OVERLAY_SIDE pixels a side."""
    from scipy import ndimage as ndi

    step = int(np.ceil(max(np.shape(image2d)) / OVERLAY_SIDE))
    if step > 1:
        image2d, lesion2d, tissue2d = (np.asarray(a)[::step, ::step] for a in (image2d, lesion2d, tissue2d))
    img = np.asarray(image2d, np.float32)
    lo, hi = np.percentile(img, [1, 99.5])
    gray = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for value in (1, 2, 3):
        sel = tissue2d == value
        rgb[sel] = 0.75 * rgb[sel] + 0.25 * _hex_rgb(TISSUE_COLORS[value])
    lesion = lesion2d > 0
    edge = lesion & ~ndi.binary_erosion(lesion, iterations=max(1, min(img.shape) // 300))
    rgb[edge] = (255, 40, 40)
    return rgb.astype(np.uint8)


def write_segmentation(
    seg, image: LoadedImage, out_dir: str | Path, stem: str | None = None, dicom_seg: bool = False
) -> list[Path]:
    """All result files of one image; returns their paths. `dicom_seg`: the
    lesions also as a DICOM SEG on the series (or image) `image` was read
    from (`io.dicom_seg`), for a PACS."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or image.name.replace("/", "_").replace(" ", "_")
    spacing = image.spacing
    tissue = seg.tissue_labels()
    written = []
    if image.data.ndim == 2:
        lesions = seg.lesion_labels.astype(np.uint16)
        _png(out_dir / f"{stem}_lesions.png", lesions, spacing)
        _png(out_dir / f"{stem}_tissue.png", tissue.astype(np.uint8), spacing)
        written += [out_dir / f"{stem}_lesions.png", out_dir / f"{stem}_tissue.png"]
        for name, att in seg.attention.items():
            path = out_dir / f"{stem}_attention_{name}.tif"
            _tiff(path, att, spacing)
            written.append(path)
        overlay = overlay_rgb(image.data, seg.lesion_labels, tissue)
    else:
        affine = image.meta.get("affine")
        kwargs = {"affine_lps": affine} if affine is not None else {"spacing": spacing, "origin_lps": None}
        for name, array in (("lesions", seg.lesion_labels.astype(np.int16)), ("tissue", tissue.astype(np.uint8))):
            path = out_dir / f"{stem}_{name}.nii.gz"
            write_nifti(path, array, **kwargs)
            written.append(path)
        for name, att in seg.attention.items():
            path = out_dir / f"{stem}_attention_{name}.nii.gz"
            write_nifti(path, np.asarray(att, np.float32), stored_as=np.uint8, **kwargs)
            written.append(path)
        areas = (seg.lesion_labels > 0).reshape(seg.lesion_labels.shape[0], -1).sum(1)
        z = int(np.argmax(areas)) if areas.any() else seg.lesion_labels.shape[0] // 2
        overlay = overlay_rgb(image.data[z], seg.lesion_labels[z], tissue[z])
    if dicom_seg:
        from .dicom_seg import write_dicom_seg

        written.append(write_dicom_seg(out_dir / f"{stem}_lesions.seg.dcm", seg.lesion_labels, image))
    path = out_dir / f"{stem}_overlay.png"
    with atomic_file(path) as handle:
        Image.fromarray(overlay).save(handle, format="PNG")
    written.append(path)
    from ..engine.lesions import lesion_list  # here: importing io must not import the engine (torch)

    report = {
        "source": image.meta.get("source_path"),
        "modality": image.modality,
        "shape": list(image.data.shape),
        "spacing_mm": list(spacing),
        # False: the file gave no pixel size; sizes below are then in pixels, not mm
        "spacing_known": bool(image.meta.get("spacing_known", False)),
        "class_probabilities": seg.class_probabilities,
        "predicted_class": seg.predicted_class,
        **seg.settings(),
        "lesions": [
            _lesion_entry(f, image.data.ndim) for f in lesion_list(seg.lesion_labels, seg.lesion_probability, spacing)
        ],
        "attention_maps": "8-bit, 0-255 for 0-1" if image.data.ndim == 2 else "NIfTI, scaled 8-bit",
        "seconds": round(seg.seconds, 3),
        "files": [p.name for p in written],
    }
    path = out_dir / f"{stem}.json"
    write_text_atomic(path, json.dumps(report, indent=1))
    written.append(path)
    return written


def _lesion_entry(lesion, ndim: int) -> dict:
    entry = lesion.to_dict()
    entry["area_mm2" if ndim == 2 else "volume_mm3"] = entry.pop("size")
    if ndim == 2:
        entry.pop("slice")
    return entry


# What `write_segmentation` names after a stem, whatever the input: the
# files by which an earlier run's results are recognised.
RESULT_SUFFIXES = (
    "_lesions.png",
    "_lesions.nii.gz",
    "_lesions.seg.dcm",
    "_tissue.png",
    "_tissue.nii.gz",
    "_overlay.png",
    ".json",
)
_INPUT_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".pnm")


def clean_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)) or "image"


def input_stem(path: str | os.PathLike) -> str:
    """A file's name without its image suffix (`case.nii.gz` -> `case`)."""
    base = Path(path).name
    for suffix in _INPUT_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


class ResultNames:
    """The stems of result files in one output folder: no two inputs of a
    run on one stem, and no earlier results replaced unasked.

    A stem is the file's name (or a DICOM series' name). Where two inputs of
    a run would share one, each gets as many of its folders as tell them
    apart (`a/case.png`, `b/case.png` -> `a_case`, `b_case`). A stem whose
    results in the folder came from another input (their JSON says which)
    is passed over the same way, so runs never replace each other's
    results. An input segmented into the folder before keeps its stem,
    and its results are replaced only with `overwrite`. A number is the
    last resort."""

    def __init__(self, out_dir: str | os.PathLike, overwrite: bool = False):
        self.out_dir, self.overwrite = Path(out_dir), overwrite
        self.used: set[str] = set()
        self.planned: dict[Path, str] = {}
        self.earlier: dict[str, str] = {}  # real path of an input -> the stem of its results here
        for report in sorted(self.out_dir.glob("*.json")) if self.out_dir.is_dir() else []:
            source = self._source_of(report.name[: -len(".json")])
            if source is not None:
                self.earlier.setdefault(os.path.realpath(source), report.name[: -len(".json")])

    @staticmethod
    def _parts(path: Path, name: str | None = None) -> list[str]:
        """Most specific first: the name, its folder, that folder's folder ..."""
        folders = [p for p in reversed(Path(path).absolute().parts) if p != "/"]
        return [name, *folders] if name is not None else [input_stem(path), *folders[1:]]

    @staticmethod
    def _join(parts: list[str], depth: int) -> str:
        return "_".join(clean_name(p) for p in reversed(parts[:depth]))

    def plan(self, files: list[Path]) -> dict[Path, str]:
        """Stems for the input files of a run, chosen together (so that
        neither of two same-named files keeps the bare name)."""
        parts = {f: self._parts(f) for f in files}
        depth = dict.fromkeys(files, 1)
        while True:
            names = {f: self._join(parts[f], depth[f]) for f in files}
            grow = [f for f in files if sum(n == names[f] for n in names.values()) > 1 and depth[f] < len(parts[f])]
            if not grow:
                break
            for f in grow:
                depth[f] += 1
        for f in files:
            self.planned[f] = self._claim(parts[f], depth[f], str(f))
        return dict(self.planned)

    def claim(self, folder: Path, name: str, source: str) -> str:
        """A stem for an image known only once read (a series in a DICOM
        folder): its name, else with its folders, else numbered."""
        return self._claim(self._parts(folder, name), 1, source)

    def _claim(self, parts: list[str], depth: int, source: str) -> str:
        before = self.earlier.get(os.path.realpath(source))
        if before is not None and before not in self.used:
            if not self.overwrite:
                raise AvptError(
                    f"{self.out_dir / before}.json holds this input's results from an earlier run: "
                    "choose another --out, or add --overwrite to replace them"
                )
            self.used.add(before)
            return before
        candidates = [self._join(parts, k) for k in range(depth, len(parts) + 1)]
        numbered = (f"{candidates[-1]}-{i}" for i in range(2, 10_000))
        for stem in [*candidates, *numbered]:
            if self._free(stem, source):
                self.used.add(stem)
                return stem
        raise AvptError(f"no free name for the results of {source} in {self.out_dir}")

    def _free(self, stem: str, source: str) -> bool:
        if stem in self.used:
            return False
        found = self.existing(stem)
        if not found:
            return True
        # Another input's results (this one's were found by `earlier`): never
        # replaced, a longer name is taken.
        return False

    def existing(self, stem: str) -> list[Path]:
        return [self.out_dir / f"{stem}{s}" for s in RESULT_SUFFIXES if (self.out_dir / f"{stem}{s}").exists()]

    def _source_of(self, stem: str) -> str | None:
        try:
            return json.loads((self.out_dir / f"{stem}.json").read_text()).get("source")
        except (OSError, ValueError, AttributeError):
            return None
