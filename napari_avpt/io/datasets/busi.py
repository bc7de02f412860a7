"""BUSI (breast ultrasound images) layout.

    benign/benign (1).png, benign/benign (1)_mask.png, [_mask_1.png ...]
    malignant/..., normal/...

Images are often stored as RGB with equal channels (made gray here); masks
may be gray, RGB or RGBA; several masks of one image are OR-merged. BUSI
PNGs carry no pixel size: spacing is 1 unless the file has a resolution tag.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import AvptError
from ..image import gray_if_equal_channels
from ..raster import MASK_NAME, read_raster_array
from .record import CLASSES, Sample
from .truth import load_truth

_NUMBER = re.compile(r"\((\d+)\)")


def _as_gray(data: np.ndarray) -> np.ndarray:
    data, rgb = gray_if_equal_channels(data)
    if rgb:  # colour overlays (Doppler): luminance
        data = (data[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    return data


def _as_mask(data: np.ndarray) -> np.ndarray:
    if data.ndim == 3:
        data = data[..., :3].max(axis=-1)
    return data > 0


def _sort_key(path: Path):
    m = _NUMBER.search(path.stem)
    return (int(m.group(1)) if m else 0, path.name)


class BusiDataset:
    """Lazy BUSI loader: `len()`, indexing and iteration give `Sample`s."""

    modality = "US"

    def __init__(self, root):
        self.root = Path(root)
        folders = {p.name.lower(): p for p in self.root.iterdir() if p.is_dir()} if self.root.is_dir() else {}
        if not any(c in folders for c in CLASSES):
            raise AvptError(f"{self.root} is not a BUSI folder (no benign/ malignant/ normal/)")
        self.items = []
        for label in CLASSES:
            folder = folders.get(label)
            if folder is None:
                continue
            for p in sorted(folder.glob("*.png"), key=_sort_key):
                if MASK_NAME.search(p.stem):
                    continue
                masks = sorted(folder.glob(f"{_glob_escape(p.stem)}_mask*.png"))
                masks = [m for m in masks if MASK_NAME.search(m.stem) and m.stem.startswith(p.stem + "_mask")]
                self.items.append((label, p, masks))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        label, path, mask_paths = self.items[index]
        data, spacing = read_raster_array(path)
        image = _as_gray(data)
        mask = np.zeros(image.shape, bool)
        for mp in mask_paths:
            m = _as_mask(read_raster_array(mp)[0])
            if m.shape != mask.shape:
                raise AvptError(
                    f"BUSI: {mp.name} is {m.shape[1]}x{m.shape[0]} but its image is {mask.shape[1]}x{mask.shape[0]}"
                )
            mask |= m
        sample_id = f"{label}/{path.stem}"
        return Sample(
            id=sample_id,
            image=image,
            spacing=spacing or (1.0, 1.0),
            modality="US",
            label=label,
            lesion_mask=mask.astype(np.uint8),
            tissue=load_truth(self.root, f"{label}_{path.stem}", "tissue"),
            meta={
                "source_path": str(path),
                "masks": [str(m) for m in mask_paths],
                "spacing_known": spacing is not None,
            },
        )


def _glob_escape(text: str) -> str:
    return re.sub(r"([\[\]\*\?])", r"[\1]", text)
