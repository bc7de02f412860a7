"""DICOM files and DICOM series folders -> `LoadedImage`.

Pixel values go through the modality LUT (Rescale Slope/Intercept or a
Modality LUT Sequence); the VOI LUT or WindowCenter/Width gives the initial
display window; MONOCHROME1 images are inverted so that bright always means
dense/enhancing. Series are grouped by SeriesInstanceUID and sorted by the
slice position along the slice normal, never by file name.

Display convention: arrays keep the DICOM voxel order (slice, row, col); the
scale is the physical spacing and the translate is the first voxel's
position projected on the slice normal, column and row directions, so series
that share an orientation line up in napari. The full voxel -> patient (LPS)
affine is kept in `meta["affine"]`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import AvptError
from .dicom_seg import is_seg, referenced_series_uid, seg_on_series
from .image import LoadedImage, default_window, gray_if_equal_channels

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")

# Compressed transfer syntaxes and the package that decodes each.
_DECODERS = {
    "1.2.840.10008.1.2.4.50": ("JPEG Baseline", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.51": ("JPEG Extended", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.57": ("JPEG Lossless", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.70": ("JPEG Lossless SV1", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.80": ("JPEG-LS Lossless", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.81": ("JPEG-LS Near-lossless", "pylibjpeg pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.90": ("JPEG 2000 Lossless", "pylibjpeg pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.91": ("JPEG 2000", "pylibjpeg pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.201": ("HTJ2K Lossless", "pylibjpeg pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.203": ("HTJ2K", "pylibjpeg pylibjpeg-openjpeg"),
}


def looks_like_dicom(path: str | os.PathLike) -> bool:
    """Quick check: a DICOM suffix, or the 'DICM' magic at byte 128."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix and path.suffix.lower() not in ("", ".1", ".2"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def find_dicom_files(folder: str | os.PathLike, limit: int | None = None, max_depth: int | None = None) -> list[Path]:
    """DICOM files below `folder` (sorted paths; order is not used), at most
    `max_depth` folders down when given."""
    found = []
    top = len(Path(folder).parts)
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        if max_depth is not None and len(Path(root).parts) - top >= max_depth:
            dirs[:] = []
        for name in sorted(files):
            p = Path(root) / name
            if not name.startswith(".") and looks_like_dicom(p):
                found.append(p)
                if limit and len(found) >= limit:
                    return found
    return found


def _open(path: Path, headers_only: bool = False) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=headers_only)
    except InvalidDicomError:
        # Old files may lack the 128-byte preamble and file meta; accept one
        # only if it reads as an image dataset, never arbitrary bytes.
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=headers_only, force=True)
            if "SOPClassUID" in ds and "Rows" in ds:
                return ds
        except Exception:  # anything pydicom raises on non-DICOM bytes
            pass
        raise AvptError(f"Cannot read {path.name}: not a DICOM file (no DICOM header)") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as e:
        raise AvptError(f"Cannot read {path.name}: damaged DICOM header ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).strip().splitlines())
    return text or type(e).__name__


def _pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    """Decoded stored values, with a message that says what to install."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise AvptError(f"Cannot read {path.name}: the DICOM file holds no image (no Pixel Data)")
    tsyntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    try:
        return ds.pixel_array
    except Exception as e:  # pydicom raises many types from its decoders
        text = str(e).lower()
        no_decoder = "missing" in text or "dependencies" in text or "no pixel data decoders" in text
        unsupported = "does not support" in text  # a decoder is installed, but not for this variant (12-bit JPEG)
        if tsyntax in _DECODERS and (no_decoder or unsupported):
            name, package = _DECODERS[tsyntax]
            which = "no decoder is installed" if no_decoder else "the installed decoder cannot read this variant"
            raise AvptError(
                f"Cannot read {path.name}: its pixels are {name} compressed and {which} (pip install {package})"
            ) from None
        raise AvptError(f"Cannot read {path.name}: pixel data is damaged or truncated ({_one_line(e)})") from None


def _modality_lut(ds: pydicom.Dataset, stored: np.ndarray) -> np.ndarray:
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return apply_modality_lut(stored, ds).astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == 0:
        return stored
    if slope.is_integer() and intercept.is_integer():
        return stored.astype(np.int32) * int(slope) + int(intercept)
    return stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _stored_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """The range of values after the modality LUT that the file could hold."""
    bits = int(getattr(ds, "BitsStored", 16))
    if int(getattr(ds, "PixelRepresentation", 0)) == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    a, b = lo * slope + intercept, hi * slope + intercept
    return (min(a, b), max(a, b))


def _first(value) -> float:
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)


def _window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """Initial display window from the VOI LUT module, if the file has one."""
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        item = ds.VOILUTSequence[0]
        n, first = int(item.LUTDescriptor[0]) or 65536, float(item.LUTDescriptor[1])
        return (first, first + n - 1)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        except (TypeError, ValueError):
            return None
        if width > 0:
            return (center - width / 2.0, center + width / 2.0)
    return None


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[tuple[float, float], bool, str]:
    """(row, col) spacing in mm, whether it is known, and where it came from."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = getattr(ds, keyword, None)
        if value is not None and len(value) == 2 and float(value[0]) > 0 and float(value[1]) > 0:
            return (float(value[0]), float(value[1])), True, keyword
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    if shared:
        measures = getattr(shared[0], "PixelMeasuresSequence", None)
        if measures and "PixelSpacing" in measures[0]:
            value = measures[0].PixelSpacing
            return (float(value[0]), float(value[1])), True, "PixelMeasuresSequence"
    regions = getattr(ds, "SequenceOfUltrasoundRegions", None)
    if regions:
        region = regions[0]
        # Physical units code 3 is centimetres.
        if (
            getattr(region, "PhysicalUnitsXDirection", None) == 3
            and getattr(region, "PhysicalUnitsYDirection", None) == 3
        ):
            return (
                (abs(float(region.PhysicalDeltaY)) * 10, abs(float(region.PhysicalDeltaX)) * 10),
                True,
                "UltrasoundRegion",
            )
    return (1.0, 1.0), False, "none"


def _directions(ds: pydicom.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or len(iop) != 6:
        return None
    row_dir = np.array([float(v) for v in iop[:3]])  # along a row: increasing column
    col_dir = np.array([float(v) for v in iop[3:]])  # along a column: increasing row
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 1e-6:
        return None
    return row_dir, col_dir, normal / np.linalg.norm(normal)


def _affine(directions, position, spacing_zyx) -> list[list[float]]:
    row_dir, col_dir, normal = directions
    aff = np.eye(4)
    aff[:3, 0] = normal * spacing_zyx[0]
    aff[:3, 1] = col_dir * spacing_zyx[1]
    aff[:3, 2] = row_dir * spacing_zyx[2]
    aff[:3, 3] = position
    return aff.tolist()


def _common_meta(ds: pydicom.Dataset, path: Path) -> dict:
    meta = {"source_path": str(path)}
    lat = getattr(ds, "ImageLaterality", None) or getattr(ds, "Laterality", None)
    if lat:
        meta["laterality"] = str(lat)
    view = getattr(ds, "ViewPosition", None)
    if view:
        meta["view"] = str(view)
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "Manufacturer"):
        value = getattr(ds, keyword, None)
        if value:
            meta[keyword] = str(value)
    meta["photometric"] = str(getattr(ds, "PhotometricInterpretation", ""))
    return meta


def _invert_monochrome1(ds, data, window):
    """MONOCHROME1 stores dense as dark: flip it so bright means dense."""
    lo, hi = _stored_range(ds) if "ModalityLUTSequence" not in ds else (float(data.min()), float(data.max()))
    flipped = (lo + hi) - data
    if np.issubdtype(data.dtype, np.unsignedinteger):
        flipped = flipped.astype(np.int32 if lo + hi < 2**31 else np.float32)
    if window is not None:
        window = ((lo + hi) - window[1], (lo + hi) - window[0])
    return flipped, window


def read_dicom(path: str | os.PathLike) -> LoadedImage:
    """One DICOM file: a 2D image, or a stack when it is multi-frame."""
    path = Path(path)
    ds = _open(path)
    stored = _pixels(ds, path)
    modality = str(getattr(ds, "Modality", "")) or None
    samples = int(getattr(ds, "SamplesPerPixel", 1))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    (dr, dc), known, source = _pixel_spacing(ds)
    window = None
    rgb = False
    if str(getattr(ds, "PhotometricInterpretation", "")) == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        colour = apply_color_lut(stored, ds)
        if colour.dtype != np.uint8:  # 16-bit palettes: show as 8-bit colour
            colour = (colour / max(float(colour.max()), 1.0) * 255).astype(np.uint8)
        data, rgb = gray_if_equal_channels(colour)
    elif samples > 1:
        data, rgb = gray_if_equal_channels(stored)
    else:
        data = _modality_lut(ds, stored)
        window = _window(ds)
        if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
            data, window = _invert_monochrome1(ds, data, window)
    spatial_ndim = data.ndim - (1 if rgb else 0)
    if frames > 1 and spatial_ndim == 3:
        between = getattr(ds, "SpacingBetweenSlices", None) or getattr(ds, "SliceThickness", None)
        frame_spacing = float(between) if between and modality in ("MR", "CT", "PT") else 1.0
        spacing = (frame_spacing, dr, dc)
    else:
        spacing = (dr, dc)
    meta = _common_meta(ds, path)
    meta.update(
        spacing_known=known, spacing_source=source, frames=frames, inverted=meta["photometric"] == "MONOCHROME1"
    )
    if frames == 1 and "SOPInstanceUID" in ds:
        meta["sop_uids"] = [str(ds.SOPInstanceUID)]  # what a DICOM SEG of this image references
    origin = None
    directions = _directions(ds)
    position = getattr(ds, "ImagePositionPatient", None)
    if directions is not None and position is not None and len(spacing) == 2:
        pos = np.array([float(v) for v in position])
        origin = (float(pos @ directions[1]), float(pos @ directions[0]))
        meta["affine"] = _affine(directions, pos, (1.0, dr, dc))
    name = meta.get("SeriesDescription") or path.stem
    if rgb:
        window = None
    elif window is None:
        window = default_window(data)
    return LoadedImage(
        data=data, spacing=spacing, name=name, modality=modality, origin=origin, window=window, rgb=rgb, meta=meta
    )


def read_dicom_series(folder: str | os.PathLike, select=None) -> list[LoadedImage]:
    """Every image series found below `folder`, one `LoadedImage` each.

    `select`, if given, is called with each series' first header (pixels not
    read yet) and keeps the series when it returns True, so that only the
    series needed are decoded.
    """
    folder = Path(folder)
    files = find_dicom_files(folder)
    if not files:
        raise AvptError(f"Cannot read {folder.name}: the folder holds no DICOM files")
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    segs: list[tuple[Path, pydicom.Dataset]] = []
    for f in files:
        try:
            ds = _open(f, headers_only=True)
        except AvptError:
            continue  # stray non-DICOM files (DICOMDIR readers, notes) are common in exports
        if is_seg(ds):
            segs.append((f, ds))  # read onto the series it references, below
            continue
        if "Rows" not in ds:
            continue  # structured reports, presentation states: no pixels
        # A series can mix planes or sizes (a 3-plane localizer): stack only
        # slices that share orientation and size.
        iop = tuple(np.round([float(v) for v in getattr(ds, "ImageOrientationPatient", [])], 3))
        key = (str(getattr(ds, "SeriesInstanceUID", f.parent)), iop, int(ds.Rows), int(getattr(ds, "Columns", 0)))
        groups[key].append((f, ds))
    if not groups:
        raise AvptError(f"Cannot read {folder.name}: none of its DICOM files holds an image")
    per_series = defaultdict(int)
    for key in groups:
        per_series[key[0]] += 1
    images, problems = [], []
    for key, members in groups.items():
        if select is not None and not select(members[0][1]):
            continue
        try:
            image = _read_series(members, folder)
        except AvptError as e:
            problems.append(str(e))
            continue
        if per_series[key[0]] > 1:
            image.name = f"{image.name} ({'x'.join(map(str, key[2:]))}, plane {len(images) + 1})"
        images.append(image)
    if not images:
        if problems:
            raise AvptError(
                problems[0] + (f" (and {len(problems) - 1} more series failed)" if len(problems) > 1 else "")
            )
        raise AvptError(f"Cannot read {folder.name}: no series matched")
    images.sort(key=lambda im: (im.meta.get("SeriesNumber", 0), im.name))
    by_uid = {im.meta.get("SeriesInstanceUID"): im for im in images}
    for path, ds in segs:
        series = by_uid.get(referenced_series_uid(ds))
        if series is None:
            if select is None:
                problems.append(f"{path.name}: a DICOM SEG of a series that is not in {folder.name}")
            continue
        try:
            images.append(seg_on_series(path, series))
        except AvptError as e:
            problems.append(str(e))
    if problems:
        images[0].meta["folder_warnings"] = problems  # shown to the user; the readable series still open
    return images


def _temporal_key(ds: pydicom.Dataset) -> float:
    for keyword in ("TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime"):
        value = getattr(ds, keyword, None)
        if value not in (None, ""):
            return float(value)
    return 0.0


def _read_series(members: list[tuple[Path, pydicom.Dataset]], folder: Path) -> LoadedImage:
    if len(members) == 1:
        image = read_dicom(members[0][0])
        image.meta["SeriesNumber"] = int(getattr(members[0][1], "SeriesNumber", 0) or 0)
        return image
    first_path, first = members[0]
    directions = _directions(first)
    label = getattr(first, "SeriesDescription", None) or first_path.parent.name
    if directions is not None and all("ImagePositionPatient" in ds for _, ds in members):
        normal = directions[2]
        keys = [float(np.array([float(v) for v in ds.ImagePositionPatient]) @ normal) for _, ds in members]
    else:
        directions = None
        keys = [float(getattr(ds, "InstanceNumber", i) or i) for i, (_, ds) in enumerate(members)]
    # Several time points in one series (each position repeated): a 4D stack.
    positions = np.round(np.array(keys), 3)  # grouping tolerance: 1 micrometre
    rounded, inverse, counts = np.unique(positions, return_inverse=True, return_counts=True)
    unique = np.array([np.mean(np.array(keys)[inverse == i]) for i in range(len(rounded))])
    n_times = int(counts[0])
    if np.any(counts != n_times):
        raise AvptError(
            f"Cannot read series '{label}' in {folder.name}: slices are missing or duplicated "
            f"({len(unique)} positions with {counts.min()}-{counts.max()} slices each)"
        )
    order = sorted(range(len(members)), key=lambda i: (_temporal_key(members[i][1]), keys[i]))
    slices = []
    for i in order:
        path, _ = members[i]
        ds = _open(path)
        stored = _pixels(ds, path)
        if stored.ndim != 2:
            raise AvptError(f"Cannot read series '{label}': {path.name} is not a single 2D slice")
        data = _modality_lut(ds, stored)
        if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
            data, _ = _invert_monochrome1(ds, data, None)
        slices.append(data)
    shapes = {s.shape for s in slices}
    if len(shapes) > 1:
        raise AvptError(f"Cannot read series '{label}' in {folder.name}: slices differ in size {sorted(shapes)}")
    dtype = np.result_type(*[s.dtype for s in slices])
    volume = np.stack(slices).astype(dtype, copy=False)
    n_pos = len(unique)
    if n_times > 1:
        volume = volume.reshape(n_times, n_pos, *volume.shape[1:])
    diffs = np.diff(unique)
    slice_spacing = float(np.median(diffs)) if diffs.size else float(getattr(first, "SliceThickness", 1.0) or 1.0)
    irregular = bool(diffs.size and np.ptp(diffs) > 0.01 * max(slice_spacing, 1e-6) + 1e-3)
    (dr, dc), known, source = _pixel_spacing(first)
    spacing = (slice_spacing, dr, dc)
    meta = _common_meta(first, first_path)
    meta.update(
        source_path=str(first_path.parent),
        n_files=len(members),
        spacing_known=known and directions is not None,
        spacing_source=source,
        irregular_spacing=irregular,
        acquisition_axis=0 if n_times == 1 else 1,
        SeriesNumber=int(getattr(first, "SeriesNumber", 0) or 0),
    )
    if n_times == 1 and all("SOPInstanceUID" in ds for _, ds in members):
        # Slice by slice, in the volume's order: what a DICOM SEG references.
        meta["slice_files"] = [str(members[i][0]) for i in order]
        meta["sop_uids"] = [str(members[i][1].SOPInstanceUID) for i in order]
    origin = None
    if directions is not None:
        first_sorted = members[order[0]][1]
        pos = np.array([float(v) for v in first_sorted.ImagePositionPatient])
        origin = (float(unique[0]), float(pos @ directions[1]), float(pos @ directions[0]))
        meta["affine"] = _affine(directions, pos, spacing)
    if n_times > 1:
        spacing = (1.0, *spacing)
        origin = (0.0, *origin) if origin else None
    window = _window(first) or default_window(volume)
    return LoadedImage(
        data=volume,
        spacing=spacing,
        name=str(label),
        modality=str(getattr(first, "Modality", "")) or None,
        origin=origin,
        window=window,
        meta=meta,
    )
