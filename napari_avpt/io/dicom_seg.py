"""DICOM Segmentation objects (SEG): lesions that can go back to a PACS.

Written with highdicom, referencing every slice of the series (or the one
image) they segment, one binary segment "lesion" (each lesion's id is not
kept: a SEG segment is a kind of finding, not one finding). Read back onto
the grid of the series they reference: in a study folder the series beside
them; a SEG file opened alone looks for its series in the folders next to it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pydicom

from ..errors import AvptError
from .image import LoadedImage

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
GRID_KEYS = ("affine", "spacing_known", "spacing_source", "acquisition_axis")  # what the labels share with their series


def is_seg(ds: pydicom.Dataset) -> bool:
    return str(getattr(ds, "SOPClassUID", "")) == SEG_SOP_CLASS


def seg_file(path: str | os.PathLike) -> bool:
    try:
        return is_seg(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]))
    except Exception:
        return False


def source_datasets(image: LoadedImage) -> list[pydicom.Dataset]:
    """The DICOM datasets `image` was read from, in the order of its slices."""
    files = image.meta.get("slice_files")
    if files is None and image.data.ndim == 2 and image.meta.get("sop_uids"):
        files = [image.meta["source_path"]]
    if not files:
        raise AvptError(f"'{image.name}' was not read from DICOM: a DICOM SEG needs the series it segments")
    return [_with_study_fields(pydicom.dcmread(f)) for f in files]


# Patient and study attributes a SEG copies from its source (DICOM type 2:
# present, may be empty). Exports and other tools often leave them out.
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _with_study_fields(ds: pydicom.Dataset) -> pydicom.Dataset:
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def seg_bytes(labels: np.ndarray, image: LoadedImage, description: str = "napari-avpt lesions") -> bytes:
    """A DICOM SEG of `labels > 0` on the series (or image) `image` came from."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    sources = source_datasets(image)
    mask = np.asarray(labels) > 0
    frames = mask[None] if mask.ndim == 2 else mask
    if frames.shape[0] != len(sources) or frames.shape[1:] != (int(sources[0].Rows), int(sources[0].Columns)):
        raise AvptError(f"the lesions are {mask.shape} but '{image.name}' has {len(sources)} slice(s) of another size")
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="napari-avpt A-VPT", version=__version__, family=codes.cid7162.ArtificialIntelligence
        ),
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=int(getattr(sources[0], "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-avpt",
        manufacturer_model_name="A-VPT",
        software_versions=__version__,
        device_serial_number="none",
        series_description=description,
        omit_empty_frames=False,
    )
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return buffer.getvalue()


def write_dicom_seg(path: str | os.PathLike, labels: np.ndarray, image: LoadedImage) -> Path:
    from .files import write_bytes_atomic

    write_bytes_atomic(path, seg_bytes(labels, image))
    return Path(path)


def referenced_series_uid(ds: pydicom.Dataset) -> str | None:
    for item in getattr(ds, "ReferencedSeriesSequence", []) or []:
        return str(item.SeriesInstanceUID)
    return None


def seg_on_series(path: Path, series: LoadedImage) -> LoadedImage:
    """The SEG at `path` as a Labels image on `series`' grid (its slices in
    the series' order; a frame the SEG has no pixels for is empty)."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as e:  # highdicom raises many kinds on a malformed object
        raise AvptError(f"Cannot read {path.name}: not a readable DICOM SEG ({str(e).splitlines()[0]})") from None
    uids = series.meta.get("sop_uids") or []
    numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    if not uids or not referenced & set(uids):
        raise AvptError(f"{path.name} does not segment '{series.name}'")
    shape = series.data.shape if series.data.ndim == 3 else (1, *series.data.shape)
    labels = np.zeros(shape, np.uint8)
    for i, uid in enumerate(uids):
        if uid not in referenced:
            continue
        pixels = seg.get_pixels_by_source_instance(
            [uid], segment_numbers=numbers, combine_segments=True, ignore_spatial_locations=True
        )
        labels[i] = pixels[0]
    labels = labels if series.data.ndim == 3 else labels[0]
    meta = {
        **{
            k: v
            for k, v in series.meta.items()
            if k in ("affine", "spacing_known", "spacing_source", "acquisition_axis")
        },
        "source_path": str(path),
        "segments": [str(s.SegmentLabel) for s in seg.SegmentSequence],
        "segmented_series": series.name,
    }
    return LoadedImage(
        data=labels,
        spacing=series.spacing,
        name=f"{series.name} {getattr(seg, 'SeriesDescription', '') or 'SEG'}".strip(),
        modality=series.modality,
        origin=series.origin,
        labels=True,
        meta=meta,
    )


def read_seg_alone(path: Path) -> list[LoadedImage]:
    """A SEG file opened by itself: its series looked for in its folder and
    the folders beside it (a study as exported), then the SEG on it."""
    from .dicom import read_dicom_series

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    wanted = referenced_series_uid(ds)
    for folder in (path.parent, path.parent.parent):
        try:
            found = read_dicom_series(folder, select=lambda h: str(getattr(h, "SeriesInstanceUID", "")) == wanted)
        except AvptError:
            continue
        series = [im for im in found if not im.labels]
        if series:
            return [seg_on_series(path, series[0])]
    raise AvptError(f"{path.name} is a DICOM SEG of a series that is not beside it: open the study folder")
