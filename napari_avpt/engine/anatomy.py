"""Tissue priors from an image alone: classical, per modality, no training.

`tissue_maps(image, modality)` returns soft maps T (3 x H x W, in [0, 1]) in
the order of `TISSUE_ORDER` (glandular, fatty, ductal), which A-VPT pools
into region embeddings. The breast is found first (threshold + largest
component; the pectoral muscle removed in mammograms); inside it, glandular
and fatty tissue are split by a two-class Otsu threshold on the smoothed
image (glands are the brighter class in mammography, ultrasound and
fat-saturated MRI, the darker one in non-fat-saturated T1 MRI), and ducts
are thin tubes found by a Sato ridge filter (bright in mammography, dark
anechoic tubes in ultrasound).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import sato, threshold_otsu

TISSUE_ORDER = ("glandular", "fatty", "ductal")
# Label values of tissue label images (phantom truth, napari layers).
TISSUE_LABELS = {"fatty": 1, "glandular": 2, "ductal": 3}


def labels_to_maps(tissue: np.ndarray) -> np.ndarray:
    """A tissue label image (0 outside, 1 fatty, 2 glandular, 3 ductal) as
    one-hot maps in `TISSUE_ORDER`."""
    return np.stack([(tissue == TISSUE_LABELS[name]).astype(np.float32) for name in TISSUE_ORDER])


def maps_to_labels(maps: np.ndarray, breast_threshold: float = 0.5) -> np.ndarray:
    """Soft maps back to a label image: the strongest tissue where the maps
    add up to at least `breast_threshold`, 0 elsewhere."""
    if maps.ndim > 3:  # a volume: slice by slice, so the temporaries stay small
        return np.stack([maps_to_labels(maps[:, z], breast_threshold) for z in range(maps.shape[1])])
    if maps.shape[1] > 2048 and maps[0].size > 8_000_000:  # a very large image: by bands of rows, likewise
        bands = range(0, maps.shape[1], 2048)
        return np.concatenate([maps_to_labels(maps[:, r : r + 2048], breast_threshold) for r in bands])
    labels = np.array([TISSUE_LABELS[name] for name in TISSUE_ORDER], np.uint8)[np.argmax(maps, axis=0)]
    return np.where(maps.sum(axis=0, dtype=np.float32) >= breast_threshold, labels, 0).astype(np.uint8)


def _longest_run(row: np.ndarray) -> int:
    padded = np.concatenate([[0], row.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = ndi.sum(mask, labels, np.arange(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def _scaled(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def breast_mask(image: np.ndarray, modality: str) -> np.ndarray:
    """The imaged breast (2D)."""
    img = _scaled(image)
    smooth = ndi.gaussian_filter(img, 2)
    if modality == "US":
        # The imaged sector: non-black, away from the burned-in text rows.
        mask = ndi.binary_opening(smooth > 0.03, iterations=3)
        mask = _largest_component(mask)
        rows = np.nonzero(mask.any(axis=1))[0]
        if rows.size:  # the skin line at the top is not breast tissue
            mask[: rows[0] + max(int(0.02 * img.shape[0]), 2)] = False
        return ndi.binary_fill_holes(mask)
    threshold = threshold_otsu(smooth) * (0.5 if modality == "MG" else 0.6)
    mask = _largest_component(ndi.binary_opening(smooth > threshold, iterations=2))
    mask = ndi.binary_fill_holes(mask)
    if modality == "MG":
        mask &= ~pectoral_mask(smooth, mask)
    if modality == "MR":
        mask &= ~_body_below_chest_wall(mask)
    return mask


def _body_below_chest_wall(foreground: np.ndarray) -> np.ndarray:
    """In an axial breast MRI slice (anterior at the top, as our readers show
    it) the torso starts at the first row that is filled across most of the
    width; everything from there down is not breast."""
    width = np.array([_longest_run(row) for row in foreground])  # two breasts leave a gap; the torso does not
    wide = np.nonzero(width > 0.6 * foreground.shape[1])[0]
    body = np.zeros_like(foreground)
    if wide.size:
        body[wide[0] :] = True
    return body


def pectoral_mask(smooth: np.ndarray, breast: np.ndarray) -> np.ndarray:
    """The pectoral muscle of an MLO view (empty for CC views), looked for
    in the breast's bounding box: a digitised film (mini-MIAS) has dark
    margins, so the chest wall is the box's edge, not the image's."""
    rows, cols = np.flatnonzero(breast.any(axis=1)), np.flatnonzero(breast.any(axis=0))
    out = np.zeros_like(breast)
    if rows.size == 0:
        return out
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    out[box] = _pectoral_in_box(smooth[box], breast[box])
    return out


def _pectoral_in_box(smooth: np.ndarray, breast: np.ndarray) -> np.ndarray:
    """`pectoral_mask` on the breast's bounding box.

    The muscle is a near-triangle in the upper corner on the chest-wall
    side, with a straight edge and brighter than the fat just beyond that
    edge. Candidate edges (lines from the top border to the chest-wall
    border) are scored by that contrast on a small copy of the image; the
    best one wins if it stands out.
    """
    rows, cols = breast.shape
    chest_left = breast[:, : max(cols // 10, 1)].sum() >= breast[:, -max(cols // 10, 1) :].sum()
    img = smooth if chest_left else smooth[:, ::-1]
    b = breast if chest_left else breast[:, ::-1]
    if not b[: max(rows // 20, 1), : max(cols // 20, 1)].any():
        return np.zeros_like(breast)  # no tissue in the corner: a CC view
    step = max(1, max(rows, cols) // 128)
    small, bs = img[::step, ::step], b[::step, ::step]
    yy, xx = np.mgrid[0 : small.shape[0], 0 : small.shape[1]].astype(np.float32)
    best, best_score = None, 0.05
    band = 4.0
    for a in np.linspace(0.08, 0.6, 14) * small.shape[1]:
        for h in np.linspace(0.15, 0.8, 14) * small.shape[0]:
            d = (xx / a + yy / h - 1) * (a * h) / np.hypot(a, h)  # signed distance to the edge (pixels)
            inside, outside = (d < -1) & bs, (d > 1) & (d < 1 + band) & bs
            if inside.sum() < 20 or outside.sum() < 20:
                continue
            score = small[inside].mean() - small[outside].mean()
            if score > best_score:
                best, best_score = (a * step, h * step), score
    if best is None:
        return np.zeros_like(breast)
    a, h = best
    y, x = np.mgrid[0:rows, 0:cols]
    muscle = (x / a + y / h) < 1
    return muscle if chest_left else muscle[:, ::-1]


def tissue_maps(
    image: np.ndarray, modality: str, fat_saturated: bool = True, breast: np.ndarray | None = None
) -> np.ndarray:
    """Soft tissue maps (glandular, fatty, ductal) of a 2D image; 0 outside
    the breast."""
    if image.ndim != 2:
        raise ValueError(f"tissue_maps takes a 2D image, got shape {image.shape}")
    img = _scaled(image)
    breast = breast_mask(image, modality) if breast is None else breast
    maps = np.zeros((3,) + img.shape, np.float32)
    if breast.sum() < 16:
        return maps
    sigma = 1.0 if modality == "MR" else 2.0
    smooth = ndi.gaussian_filter(img, sigma)
    values = smooth[breast]
    threshold = threshold_otsu(values) if np.ptp(values) > 1e-6 else float(values.mean())
    spread = max(float(np.std(values)) * 0.25, 1e-3)
    brighter = 1.0 / (1.0 + np.exp(-(smooth - threshold) / spread))
    glands_bright = not (modality == "MR" and not fat_saturated)
    glandular = brighter if glands_bright else 1.0 - brighter
    ridge_scale = [1.5, 3.0] if modality != "MR" else [1.0, 2.0]
    ridges = sato(img, sigmas=ridge_scale, black_ridges=(modality == "US"))
    ridges = np.where(breast, ridges, 0)
    top = np.percentile(ridges[breast], 99) if breast.any() else 1.0
    ductal = np.clip(ridges / max(top, 1e-6), 0, 1) ** 2
    ductal = np.where(ductal > 0.25, ductal, 0.0)
    glandular = glandular * (1 - ductal)
    fatty = (1 - glandular) * (1 - ductal)
    maps[0] = np.where(breast, glandular, 0)
    maps[1] = np.where(breast, fatty, 0)
    maps[2] = np.where(breast, ductal, 0)
    return maps


def tissue_maps_volume(volume: np.ndarray, modality: str = "MR", fat_saturated: bool = True) -> np.ndarray:
    """Slice-by-slice maps of a volume: (3, slices, rows, cols)."""
    return np.stack([tissue_maps(s, modality, fat_saturated) for s in volume], axis=1)
