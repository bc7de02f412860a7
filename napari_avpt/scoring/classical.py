"""A deliberately simple, non-learned lesion segmenter: smooth, threshold,
keep one blob (the darkest for ultrasound, the brightest for mammography and
MRI). It is the floor a learned model must clear by far; if it does not, the
phantoms are too easy to tell methods apart."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

BRIGHT_LESIONS = {"MG": True, "MR": True, "US": False}


def classical_lesion_mask(image: np.ndarray, modality: str, sigma: float = 2.0) -> np.ndarray:
    """One connected blob (2D or 3D) standing out from the imaged tissue."""
    if modality not in BRIGHT_LESIONS:
        raise ValueError(f"unknown modality {modality!r}")
    img = ndi.gaussian_filter(np.asarray(image, np.float32), sigma)
    raw = np.asarray(image, np.float32)
    # The imaged tissue: above the air/background level.
    foreground = raw > threshold_otsu(raw) * (0.5 if modality != "US" else 0.1)
    foreground = ndi.binary_erosion(ndi.binary_fill_holes(foreground), iterations=2)
    values = img[foreground]
    if values.size == 0:
        return np.zeros(image.shape, bool)
    bright = BRIGHT_LESIONS[modality]
    cut = np.percentile(values, 97 if bright else 6)
    candidates = (img > cut if bright else img < cut) & foreground
    labels, n = ndi.label(candidates)
    if n == 0:
        return np.zeros(image.shape, bool)
    index = np.arange(1, n + 1)
    sizes = ndi.sum(candidates, labels, index)
    means = ndi.mean(img, labels, index)
    big = sizes >= max(0.2 * sizes.max(), 10)  # ignore specks; among the rest pick the most extreme
    score = np.where(big, means if bright else -means, -np.inf)
    blob = labels == index[int(np.argmax(score))]
    # Refine the margin: threshold halfway between the blob and its surroundings.
    around = ndi.binary_dilation(blob, iterations=int(3 * sigma) + 2)
    ring = around & ~blob & foreground
    if not ring.any():
        return blob
    cut = 0.5 * (img[blob].mean() + img[ring].mean())
    grown, _ = ndi.label(((img > cut) if bright else (img < cut)) & around)
    keep = np.unique(grown[blob & (grown > 0)])
    return np.isin(grown, keep) if keep.size else blob
