"""PNG / JPEG / TIFF / PGM frames (ultrasound, BUSI, BUS-BRA, mini-MIAS) -> `LoadedImage`.

Colour frames whose channels are equal become grayscale. A BUSI mask
(`name_mask.png`, `name_mask_1.png`, ...) or a BUS-BRA mask
(`mask_NNNN-l.png`) opens as a label image. The pixel size comes from the
file's resolution tag (PNG pHYs, JPEG/TIFF DPI) when it has one; otherwise
spacing is 1 and `meta["spacing_known"]` is False. A raster is taken for an
ultrasound frame, except a PGM/PNM (the format mammography sets such as
mini-MIAS are released in) and a file named as mini-MIAS names its images
(`mdbNNN`, 200 µm pixels by the release's statement), which are mammograms.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import AvptError
from .image import LoadedImage, default_window, gray_if_equal_channels

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".pnm")
MAMMOGRAM_SUFFIXES = (".pgm", ".pnm")
MASK_NAME = re.compile(r"(_mask(_\d+)?$)|(^mask_)", re.IGNORECASE)
MIAS_NAME = re.compile(r"^mdb\d{3}$", re.IGNORECASE)
MIAS_SPACING = (0.2, 0.2)  # mm: the mini-MIAS release's stated pixel edge
# The largest raster read: twice Pillow's decompression-bomb warning size
# (about 13,400 pixels a side), where Pillow itself refuses. A 12,000 x
# 12,000 frame is read; the model sees a downsampled copy anyway.
MAX_PIXELS = 178_956_970


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes up to MAX_PIXELS are fine here
            img = Image.open(path)
    except Image.DecompressionBombError:
        raise AvptError(
            f"{path.name} is over {MAX_PIXELS / 1e6:.0f} megapixels, the largest image napari-avpt reads: "
            "downsample it first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise AvptError(
            f"Cannot read {path.name}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise AvptError(
            f"{path.name} is {img.width} x {img.height} pixels, over the {MAX_PIXELS / 1e6:.0f} megapixels "
            "napari-avpt reads: downsample it first"
        )
    try:
        with img:
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
    modality = "MG" if path.suffix.lower() in MAMMOGRAM_SUFFIXES or MIAS_NAME.match(path.stem) else "US"
    if spacing is None and MIAS_NAME.match(path.stem) and data.shape[:2] == (1024, 1024):
        spacing = MIAS_SPACING
    meta = {"source_path": str(path), "spacing_known": spacing is not None, "modality_assumed": True}
    if is_mask_path(path):
        if rgb:
            data = data.max(axis=-1)
        return LoadedImage(
            data=(data > 0).astype(np.uint8),
            spacing=spacing or (1.0, 1.0),
            name=path.stem,
            modality=modality,
            labels=True,
            meta=meta,
        )
    return LoadedImage(
        data=data,
        spacing=spacing or (1.0, 1.0),
        name=path.stem,
        modality=modality,
        window=None if rgb else default_window(data),
        rgb=rgb,
        meta=meta,
    )
