"""PNG / JPEG / TIFF frames (ultrasound, BUSI) -> `LoadedImage`.

Colour frames whose channels are equal become grayscale. A BUSI mask
(`name_mask.png`, `name_mask_1.png`, ...) opens as a label image. The pixel
size comes from the file's resolution tag (PNG pHYs, JPEG/TIFF DPI) when it
has one; otherwise spacing is 1 and `meta["spacing_known"]` is False.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import AvptError
from .image import LoadedImage, default_window, gray_if_equal_channels

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_NAME = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)


def is_raster_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(RASTER_SUFFIXES)


def is_mask_path(path: str | os.PathLike) -> bool:
    return bool(MASK_NAME.search(Path(path).stem))


def _spacing_from_resolution(img: Image.Image) -> tuple[float, float] | None:
    dpi = img.info.get("dpi")
    if not dpi:
        return None
    try:
        dx, dy = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    # 72 dpi and 96 dpi are software defaults, not a scanner's pixel size.
    if dx <= 0 or dy <= 0 or round(dx) in (72, 96) or round(dy) in (72, 96):
        return None
    return (25.4 / dy, 25.4 / dx)


def read_raster_array(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Pixels (2D gray or RGB) and the spacing from the file, if any."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            spacing = _spacing_from_resolution(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "1"):
                data = np.asarray(img)
            else:
                data = np.asarray(img.convert("RGBA" if "A" in img.getbands() else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise AvptError(
            f"Cannot read {path.name}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if data.dtype == bool:
        data = data.astype(np.uint8)
    return data, spacing


def read_raster(path: str | os.PathLike) -> LoadedImage:
    path = Path(path)
    data, spacing = read_raster_array(path)
    data, rgb = gray_if_equal_channels(data)
    meta = {"source_path": str(path), "spacing_known": spacing is not None, "modality_assumed": True}
    if is_mask_path(path):
        if rgb:
            data = data.max(axis=-1)
        return LoadedImage(
            data=(data > 0).astype(np.uint8),
            spacing=spacing or (1.0, 1.0),
            name=path.stem,
            modality="US",
            labels=True,
            meta=meta,
        )
    return LoadedImage(
        data=data,
        spacing=spacing or (1.0, 1.0),
        name=path.stem,
        modality="US",
        window=None if rgb else default_window(data),
        rgb=rgb,
        meta=meta,
    )
