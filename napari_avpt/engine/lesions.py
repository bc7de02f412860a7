"""The list of lesions a segmentation found, as a reader reads it: size,
longest diameter, how sure the model is, and where (no Qt, no files)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.measure import regionprops


@dataclass
class Lesion:
    id: int
    size: float  # mm² (2D) or mm³ (3D); pixels where the pixel size is unknown (spacing 1)
    diameter_mm: float  # longest diameter (Feret), in the image's units
    probability: float  # the highest lesion probability inside it
    mean_probability: float
    centroid: tuple[float, ...]  # (row, col) or (slice, row, col), in pixels of the input grid
    slice: int | None  # 3D: the slice where it is largest

    def to_dict(self) -> dict:
        d = asdict(self)
        d["centroid"] = [round(c, 1) for c in self.centroid]
        for k in ("size", "diameter_mm", "probability", "mean_probability"):
            d[k] = round(d[k], 3)
        return d


def lesion_list(labels: np.ndarray, probability: np.ndarray, spacing) -> list[Lesion]:
    """One `Lesion` per label id of `labels`, largest first; `spacing` the
    pixel (voxel) size in mm along each axis."""
    labels = np.asarray(labels)
    spacing = tuple(float(s) for s in spacing[-labels.ndim :])
    unit = float(np.prod(spacing))
    out = []
    for region in regionprops(labels, intensity_image=np.asarray(probability, np.float32), spacing=spacing):
        z = None
        if labels.ndim == 3:
            z0 = region.bbox[0]
            z = z0 + int(np.argmax(region.image.reshape(region.image.shape[0], -1).sum(1)))
        out.append(
            Lesion(
                id=int(region.label),
                size=float(region.num_pixels * unit),
                diameter_mm=_longest_diameter(region, spacing),
                probability=float(region.intensity_max),
                mean_probability=float(region.intensity_mean),
                centroid=tuple(float(c) for c in np.asarray(region.centroid) / np.asarray(spacing)),
                slice=z,
            )
        )
    return sorted(out, key=lambda lesion: -lesion.size)


def _longest_diameter(region, spacing) -> float:
    """The longest distance between two of the lesion's boundary points, in mm."""
    try:
        return float(region.feret_diameter_max)
    except Exception:  # a lesion one pixel thick in some direction has no hull to measure
        extent = (np.asarray(region.bbox[region.image.ndim :]) - np.asarray(region.bbox[: region.image.ndim])) * spacing
        return float(np.linalg.norm(extent))
