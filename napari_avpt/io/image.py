"""`LoadedImage`: what every reader returns, and how it becomes a napari layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODALITIES = ("MG", "US", "MR")


@dataclass
class LoadedImage:
    """An image (or label image) read from disk, in physical units.

    `spacing` and `origin` are in millimetres, one value per array axis
    (napari's `scale` and `translate`); an RGB image has no value for its
    channel axis. `window` is the initial display window (contrast limits).
    `meta` holds what later steps need: `modality`, `laterality`, `view`,
    `source_path`, `affine` (voxel -> patient LPS, 4x4, mm) and
    `spacing_known` (False when the file carries no physical size).
    """

    data: np.ndarray
    spacing: tuple[float, ...]
    name: str
    modality: str | None = None
    origin: tuple[float, ...] | None = None
    window: tuple[float, float] | None = None
    rgb: bool = False
    labels: bool = False
    meta: dict = field(default_factory=dict)

    def layer_data(self) -> tuple:
        """The napari LayerData tuple `(data, kwargs, layer_type)`."""
        ndim = self.data.ndim - (1 if self.rgb else 0)
        origin = self.origin if self.origin is not None else (0.0,) * ndim
        metadata = {
            **self.meta,
            "modality": self.modality,
            "spacing_mm": tuple(float(s) for s in self.spacing),
        }
        kwargs = {
            "name": self.name,
            "scale": tuple(float(s) for s in self.spacing),
            "translate": tuple(float(o) for o in origin),
            "metadata": metadata,
        }
        if self.labels:
            return (self.data, kwargs, "labels")
        if not self.rgb:
            kwargs["colormap"] = "gray"
            kwargs["contrast_limits"] = self.window or default_window(self.data)
        else:
            kwargs["rgb"] = True
        return (self.data, kwargs, "image")


def default_window(data: np.ndarray) -> tuple[float, float]:
    """A display window from robust percentiles (sampled: volumes are big)."""
    flat = np.asarray(data).ravel()
    if flat.size > 2_000_000:
        flat = flat[:: flat.size // 1_000_000]
    if flat.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(flat, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
        if hi <= lo:
            hi = lo + 1.0
    return (float(lo), float(hi))


def gray_if_equal_channels(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """Collapse an RGB(A) image whose colour channels are equal (the usual
    way ultrasound frames and BUSI masks are stored) to one gray channel.

    Returns (array, still_rgb)."""
    if rgb.ndim < 3 or rgb.shape[-1] not in (3, 4):
        return rgb, False
    color = rgb[..., :3]
    if np.array_equal(color[..., 0], color[..., 1]) and np.array_equal(color[..., 0], color[..., 2]):
        return np.ascontiguousarray(color[..., 0]), False
    return np.ascontiguousarray(color), True
