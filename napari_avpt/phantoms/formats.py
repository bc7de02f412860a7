"""Write phantoms in the exact on-disk layouts of INbreast, BUSI, Duke,
BUS-BRA and mini-MIAS, and as a generic images + masks folder.

The loaders in `napari_avpt.io.datasets` read these back; so do the loaders'
users' own copies of the real datasets. Every dataset also gets `_truth/`
with the phantoms' tissue maps (and, for Duke, the lesion masks behind the
boxes) so that methods can be measured against the truth. A dataset folder
is built in a temporary folder and renamed into place at the end.
"""

from __future__ import annotations

import datetime
import plistlib
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..engine.progress import Progress
from ..io.datasets.truth import TRUTH_DIR
from ..io.files import atomic_folder
from ..io.nifti import write_nifti
from .mammography import make_mammogram
from .mri import PHASES, make_breast_mri
from .record import Phantom
from .ultrasound import make_ultrasound

FORMATS = ("inbreast", "busi", "duke", "busbra", "mias", "folder")
MG_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image - For Presentation
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
_PHASE_DESCRIPTIONS = {
    "pre": "ax dyn pre",
    "post_1": "ax dyn 1st pass",
    "post_2": "ax dyn 2nd pass",
    "post_3": "ax dyn 3rd pass",
    "post_4": "ax dyn 4th pass",
}
_CLASS_BIRADS = {"normal": ["1"], "benign": ["2", "3"], "malignant": ["4a", "4b", "4c", "5", "6"]}


def _code(*parts) -> int:
    """A stable 5-digit number from text (Python's hash() changes per run)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) % 90000 + 10000


def _uid(*parts) -> str:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def dicom_dataset(pixels: np.ndarray, modality: str, sop_class: str, uid_seed: str, **attrs) -> pydicom.Dataset:
    """A minimal, valid single-frame grayscale DICOM dataset for `pixels`
    (uint16), uncompressed explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = _uid(uid_seed, "sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    return ds


def _date(seed: int) -> str:
    return (datetime.date(2015, 1, 1) + datetime.timedelta(days=int(seed) % 2000)).strftime("%Y%m%d")


def _save_png(path: Path, array: np.ndarray, spacing=None, rgb: bool = False) -> None:
    img = Image.fromarray(np.stack([array] * 3, -1) if rgb else array)
    kwargs = {"dpi": (25.4 / spacing[1], 25.4 / spacing[0])} if spacing else {}
    img.save(path, **kwargs)


def write_mammogram_dicom(phantom: Phantom, path: Path, patient: str, uid_seed: str, monochrome1: bool = False) -> None:
    """A 'for presentation' mammogram with ImagerPixelSpacing, window, view
    and laterality, as INbreast files carry them."""
    bits = int(phantom.meta.get("bits", 14))
    pixels = phantom.image.astype(np.uint16)
    breast = pixels[phantom.tissue > 0]
    lo, hi = np.percentile(breast, [1, 99.5]) if breast.size else (0, 2**bits - 1)
    center, width = float((lo + hi) / 2), float(max(hi - lo, 1))
    if monochrome1:
        pixels = (2**bits - 1 - pixels).astype(np.uint16)
        center = float(2**bits - 1 - center)
    ds = dicom_dataset(
        pixels,
        "MG",
        MG_STORAGE,
        uid_seed,
        PatientID=patient,
        StudyInstanceUID=_uid(patient, "study"),
        SeriesInstanceUID=_uid(uid_seed, "series"),
        StudyDate=_date(_code(patient)),
        ImageLaterality=phantom.meta["laterality"],
        ViewPosition=phantom.meta["view"],
        ImagerPixelSpacing=[f"{phantom.spacing[0]:.10g}", f"{phantom.spacing[1]:.10g}"],
        WindowCenter=f"{center:.1f}",
        WindowWidth=f"{width:.1f}",
        PresentationIntentType="FOR PRESENTATION",
        Manufacturer="napari-avpt phantom",
    )
    ds.BitsStored, ds.HighBit = bits, bits - 1
    if monochrome1:
        ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path, enforce_file_format=True)


def _contour_points(mask: np.ndarray) -> list[str]:
    """The outline of `mask` as INbreast "(x, y)" strings."""
    from skimage.measure import find_contours

    contours = find_contours(np.pad(mask.astype(np.uint8), 1), 0.5)
    if not contours:
        return []
    contour = max(contours, key=len) - 1  # undo the padding
    return [f"({x:.2f}, {y:.2f})" for y, x in contour]


def _inbreast_plist(phantom: Phantom, rng: np.random.Generator) -> dict:
    rois = []
    for i in range(1, int(phantom.lesion.max()) + 1):
        points = _contour_points(phantom.lesion == i)
        if len(points) > 2:
            rois.append(
                {"Name": "Mass", "NumberOfPoints": len(points), "Point_px": points, "Type": 19, "IndexInImage": i - 1}
            )
    if phantom.label == "malignant" and rng.random() < 0.5:  # a calcification: a point ROI
        ys, xs = np.nonzero(phantom.lesion)
        x, y = float(xs.mean()), float(ys.mean())
        rois.append({"Name": "Calcification", "NumberOfPoints": 1, "Point_px": [f"({x:.2f}, {y:.2f})"], "Type": 19})
    return {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]}


def write_inbreast(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    (out / "AllDICOMs").mkdir()
    (out / "AllXML").mkdir()
    (out / TRUTH_DIR).mkdir()
    lines = ["Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"]
    for i, ph in enumerate(phantoms):
        file_id = f"{50990000 + seed * 1000 + i:08d}"
        patient = f"{rng.integers(0, 2**62):016x}"
        view = "ML" if ph.meta["view"] == "MLO" else "CC"  # INbreast file names say ML
        name = f"{file_id}_{patient}_MG_{ph.meta['laterality']}_{view}_ANON.dcm"
        write_mammogram_dicom(ph, out / "AllDICOMs" / name, patient, f"inbreast-{seed}-{i}")
        if ph.lesion.any():
            with open(out / "AllXML" / f"{file_id}.xml", "wb") as f:
                plistlib.dump(_inbreast_plist(ph, rng), f)
        birads = str(rng.choice(_CLASS_BIRADS[ph.label]))
        acr = "abcd".index(ph.meta["density"]) + 1
        age, date = rng.integers(35, 80), _date(seed + i)[:6]
        lines.append(f"removed;{age};{ph.meta['laterality']};{view};{date};{file_id};{acr};{birads}")
        _save_png(out / TRUTH_DIR / f"{file_id}_tissue.png", ph.tissue)
    (out / "INbreast.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_busi(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    counters = {}
    (out / TRUTH_DIR).mkdir()
    for ph in phantoms:
        folder = out / ph.label
        folder.mkdir(exist_ok=True)
        counters[ph.label] = counters.get(ph.label, 0) + 1
        stem = f"{ph.label} ({counters[ph.label]})"
        _save_png(folder / f"{stem}.png", ph.image, ph.spacing, rgb=True)  # BUSI stores RGB
        n = max(int(ph.lesion.max()), 1)
        for k in range(1, n + 1):
            suffix = "_mask" if k == 1 else f"_mask_{k - 1}"
            mask = ((ph.lesion == k) * 255).astype(np.uint8)
            _save_png(folder / f"{stem}{suffix}.png", mask, rgb=bool(rng.random() < 0.5))
        _save_png(out / TRUTH_DIR / f"{ph.label}_{stem}_tissue.png", ph.tissue)


def write_busbra(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    """BUS-BRA: `Images/bus_NNNN-{l,r}.png`, `Masks/mask_NNNN-{l,r}.png`,
    `bus_data.csv` and `5-fold-cv.csv`; two frames per case (patient).
    Lesion-free phantoms are left out, as BUS-BRA has none."""
    (out / "Images").mkdir()
    (out / "Masks").mkdir()
    (out / TRUTH_DIR).mkdir()
    rows = ["ID,Case,Histology,Pathology,BIRADS,Device,Width,Height,Side,BBOX"]
    folds = ["ID,Pathology,kFold,valid_1,valid_2,valid_3,valid_4,valid_5"]
    frames = [ph for ph in phantoms if ph.label != "normal"]
    for i, ph in enumerate(frames):
        case, side = i // 2 + 1, "lr"[i % 2]
        frame_id = f"bus_{case:04d}-{side}"
        _save_png(out / "Images" / f"{frame_id}.png", ph.image)
        _save_png(out / "Masks" / f"mask_{case:04d}-{side}.png", ((ph.lesion > 0) * 255).astype(np.uint8))
        _save_png(out / TRUTH_DIR / f"{frame_id}_tissue.png", ph.tissue)
        rr, cc = np.nonzero(ph.lesion)
        box = f'"[{cc.min()},{rr.min()},{cc.max() - cc.min() + 1},{rr.max() - rr.min() + 1}]"'
        rows.append(
            f"{frame_id},{case},phantom,{ph.label},{4 if ph.label == 'malignant' else 3},Phantom @10MHz,"
            f"{ph.image.shape[1]},{ph.image.shape[0]},{'left' if side == 'l' else 'right'},{box}"
        )
        folds.append(f"{frame_id},{ph.label},{(case - 1) % 5 + 1},1,1,1,1,1")
    (out / "bus_data.csv").write_text("\n".join(rows) + "\n")
    (out / "5-fold-cv.csv").write_text("\n".join(folds) + "\n")


def write_mias(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    """mini-MIAS: `mdbNNN.pgm` (binary 8-bit PGM, as released) and
    `Info.txt`: one row per lesion, its circle's centre with the origin at
    the bottom-left and the radius that encloses it; NORM for lesion-free."""
    rows = []
    for i, ph in enumerate(phantoms, 1):
        name = f"mdb{i:03d}"
        Image.fromarray(_to_uint8(ph.image)).save(out / f"{name}.pgm")
        tissue = "FGD"[i % 3]
        if ph.label == "normal" or not ph.lesion.any():
            rows.append(f"{name} {tissue} NORM ")
            continue
        for k in range(1, int(ph.lesion.max()) + 1):
            rr, cc = np.nonzero(ph.lesion == k)
            if rr.size == 0:
                continue
            r, c = rr.mean(), cc.mean()
            radius = np.sqrt((rr - r) ** 2 + (cc - c) ** 2).max() + 1
            x, y = round(c), ph.image.shape[0] - round(r)
            rows.append(f"{name} {tissue} CIRC {'M' if ph.label == 'malignant' else 'B'} {x} {y} {round(radius)}")
    (out / "Info.txt").write_text("\n".join(rows) + "\n")


def write_image_mask_folder(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    """A generic folder: `images/case_NNN.png`, `masks/case_NNN.png` and
    `labels.csv` (id, label, patient)."""
    (out / "images").mkdir()
    (out / "masks").mkdir()
    rows = ["id,label,patient"]
    for i, ph in enumerate(phantoms, 1):
        stem = f"case_{i:03d}"
        _save_png(out / "images" / f"{stem}.png", _to_uint8(ph.image))
        _save_png(out / "masks" / f"{stem}.png", ((ph.lesion > 0) * 255).astype(np.uint8))
        rows.append(f"{stem},{ph.label},p{(i + 1) // 2}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    lo, hi = float(image.min()), float(image.max())
    return np.round((image - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)


def write_duke_patient(ph: Phantom, folder: Path, pid: str, uid_seed: str) -> None:
    """Five DICOM series (pre, post_1..4), one file per slice, TCIA naming."""
    n_z, n_y, n_x = ph.image.shape
    s_z, s_y, s_x = ph.spacing
    x0, y0, z0 = -n_x * s_x / 2, -n_y * s_y / 2, -n_z * s_z / 2
    study = folder / f"01-01-1990-NA-MRI BREAST BILATERAL W  WO-{_code(pid)}"
    study_uid = _uid(uid_seed, "study")
    for number, phase in enumerate(PHASES, start=2):
        desc = _PHASE_DESCRIPTIONS[phase]
        series_dir = study / f"{number}.000000-{desc}-{_code(pid, phase)}"
        series_dir.mkdir(parents=True)
        series_uid = _uid(uid_seed, phase, "series")
        volume = ph.phases[phase]
        for k in range(n_z):
            ds = dicom_dataset(
                volume[k],
                "MR",
                MR_STORAGE,
                f"{uid_seed}-{phase}-{k}",
                PatientID=pid,
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid,
                FrameOfReferenceUID=_uid(uid_seed, "frame"),
                SeriesDescription=desc,
                SeriesNumber=number,
                InstanceNumber=k + 1,
                ImagePositionPatient=[f"{x0:.8g}", f"{y0:.8g}", f"{z0 + k * s_z:.8g}"],
                ImageOrientationPatient=["1", "0", "0", "0", "1", "0"],
                PixelSpacing=[f"{s_y:.10g}", f"{s_x:.10g}"],
                SliceThickness=f"{s_z:.6g}",
                SpacingBetweenSlices=f"{s_z:.6g}",
                AcquisitionTime=f"{10 + number:02d}0000",
                Manufacturer="napari-avpt phantom",
            )
            ds.save_as(series_dir / f"1-{k + 1:03d}.dcm", enforce_file_format=True)


def write_duke(phantoms: list[Phantom], out: Path, seed: int = 0) -> None:
    from openpyxl import Workbook

    (out / TRUTH_DIR).mkdir()
    wb = Workbook()
    sheet = wb.active
    sheet.append(["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"])
    for i, ph in enumerate(phantoms):
        pid = f"Breast_MRI_{seed * 1000 + i + 1:03d}"
        write_duke_patient(ph, out / pid, pid, f"duke-{seed}-{i}")
        if ph.lesion.any():
            zs, rs, cs = np.nonzero(ph.lesion)
            sheet.append([pid, rs.min() + 1, rs.max() + 1, cs.min() + 1, cs.max() + 1, zs.min() + 1, zs.max() + 1])
        n_z, n_y, n_x = ph.image.shape
        origin = (-n_x * ph.spacing[2] / 2, -n_y * ph.spacing[1] / 2, -n_z * ph.spacing[0] / 2)
        write_nifti(out / TRUTH_DIR / f"{pid}_tissue.nii.gz", ph.tissue, ph.spacing, origin)
        write_nifti(out / TRUTH_DIR / f"{pid}_lesion.nii.gz", ph.lesion, ph.spacing, origin)
    wb.save(out / "Annotation_Boxes.xlsx")


def generate(fmt: str, n: int, seed: int, size: tuple[int, ...] | None = None) -> list[Phantom]:
    """`n` phantoms for a dataset format, classes balanced (Duke: all have
    cancer, as in the real dataset)."""
    out = []
    for i in range(n):
        s = seed * 100_003 + i
        if fmt == "inbreast":
            out.append(
                make_mammogram(s, label=("normal", "benign", "malignant")[i % 3], **({"shape": size} if size else {}))
            )
        elif fmt == "mias":
            shape = {"shape": size} if size else {}
            out.append(make_mammogram(s, label=("normal", "benign", "malignant")[i % 3], view="MLO", **shape))
        elif fmt in ("busi", "busbra", "folder"):
            out.append(
                make_ultrasound(s, label=("normal", "benign", "malignant")[i % 3], **({"shape": size} if size else {}))
            )
        elif fmt == "duke":
            out.append(make_breast_mri(s, label="malignant", **({"shape": size} if size else {})))
        else:
            raise ValueError(f"unknown format {fmt!r}")
    return out


_WRITERS: dict[str, Callable] = {
    "inbreast": write_inbreast,
    "busi": write_busi,
    "duke": write_duke,
    "busbra": write_busbra,
    "mias": write_mias,
    "folder": write_image_mask_folder,
}


def write_dataset(fmt: str, n: int, seed: int, out, size: tuple[int, ...] | None = None, progress=None) -> Path:
    """Generate and write a phantom dataset; `out` must not exist (or be empty)."""
    out = Path(out)
    phantoms = []
    for i, ph in enumerate(generate(fmt, n, seed, size)):
        phantoms.append(ph)
        if progress:
            progress(Progress("phantoms", i + 1, n, unit="image", label=fmt))
    with atomic_folder(out) as tmp:
        _WRITERS[fmt](phantoms, tmp, seed)
    return out
