"""The uniform sample record of every dataset loader."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("normal", "benign", "malignant")


@dataclass
class Sample:
    """One annotated image of a dataset.

    `image` is 2D (mammography, ultrasound) or 3D (MRI: slice, row, col) with
    `spacing` in mm per axis. `lesion_mask` (0/1, same grid) is given where
    the dataset outlines lesions; `lesion_boxes` where it only boxes them,
    each box a tuple of (start, stop) per axis, 0-based, stop exclusive.
    `tissue` (0 outside, 1 fatty, 2 glandular, 3 ductal) only where known
    (our phantoms). `label` is normal / benign / malignant.
    """

    id: str
    image: np.ndarray
    spacing: tuple[float, ...]
    modality: str
    label: str
    lesion_mask: np.ndarray | None = None
    lesion_boxes: list[tuple[tuple[int, int], ...]] = field(default_factory=list)
    tissue: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def lesion_target(self) -> np.ndarray:
        """The lesion mask, or the boxes filled in when there is no outline."""
        if self.lesion_mask is not None:
            return self.lesion_mask.astype(np.uint8)
        target = np.zeros(self.image.shape, np.uint8)
        for box in self.lesion_boxes:
            target[tuple(slice(a, b) for a, b in box)] = 1
        return target


class LazySamples:
    """What the loaders share: `items` listed when opened, a `Sample` read
    per index (`__getitem__`, each loader's own)."""

    items: list

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
