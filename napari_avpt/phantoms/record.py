"""The record every phantom generator returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Phantom:
    """A synthetic breast image with its ground truth.

    `image` is 2D (rows, cols) or 3D (slices, rows, cols); `tissue` and
    `lesion` lie on the same grid. `tissue` uses 0 outside/air, 1 fatty,
    2 glandular, 3 ductal; `lesion` is 0 background and 1..n per lesion.
    `spacing` is in millimetres, one value per axis. MRI phantoms also carry
    every dynamic phase in `phases` (`image` is the first post-contrast one).
    """

    image: np.ndarray
    tissue: np.ndarray
    lesion: np.ndarray
    label: str
    spacing: tuple[float, ...]
    modality: str
    meta: dict = field(default_factory=dict)
    phases: dict[str, np.ndarray] | None = None

    @property
    def lesion_mask(self) -> np.ndarray:
        return self.lesion > 0
