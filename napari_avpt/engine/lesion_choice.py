"""Which of an image's drawn regions is the lesion: a learned choice.

The Segmenter draws the regions above the lesion threshold and, by
default, keeps those whose probability mass is at least `weak_ratio` of
the strongest one's. On BUS-BRA validation patients, on 19 of the 29
frames scored under Dice 0.05 a region on the lesion had been drawn and a
stronger one by mass (a dark duct, a shadow, the dark band under the
skin) ranked above it (`docs/experiments/NOTES.md`). A prompt set may
carry a logistic regression (`lesion_class.ShapeFit` of
`REGION_FEATURES`, metadata `lesion_choice`, fitted by `napari-avpt
calibrate-regions` on annotated images the set was not trained on) that
scores each region from its probabilities, size, place in the frame,
darkness against its surroundings and shape; the Segmenter then ranks
regions by that score instead of by mass — `weak_ratio` applies to it,
and the zoomed second look (`zoom_look`) goes to the region it ranks
first.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

REGION_FEATURES = (
    "log_mass_share",
    "log_mass_over_strongest",
    "mean_probability",
    "max_probability",
    "log_area_share",
    "depth",
    "off_centre",
    "log_contrast",
    "log_height_over_width",
    "log_compactness",
)
MATCH_DICE = 0.1  # a region with at least this Dice against the truth counts as the lesion when fitting


def region_features(labels: np.ndarray, prob: np.ndarray, image: np.ndarray, ids) -> np.ndarray:
    """`REGION_FEATURES` (len(ids), F) of the regions `ids` of a 2D label
    image, on the grid of `prob` (the lesion probability) and `image`.
    Depth runs down the frame, as ultrasound is shown; the contrast is the
    region's mean intensity against a ring around it (lesions are darker
    than the tissue beside them on ultrasound)."""
    from skimage.measure import perimeter

    ids = np.asarray(ids, int)
    n = int(labels.max()) + 1
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    mass = np.bincount(flat, weights=prob.ravel().astype(np.float64), minlength=n)
    peak = np.asarray(ndi.maximum(prob, labels, ids), np.float64).reshape(-1)
    img = np.asarray(image, np.float32)
    scale = max(float(np.percentile(img, 99)), 1e-6)  # intensities as a share of the frame's bright end
    eps = 5e-3
    objects = ndi.find_objects(labels)
    rows, cols = labels.shape
    strongest = max(mass[ids].max(), 1e-9) if len(ids) else 1.0
    out = []
    for k, i in enumerate(ids):
        r = max(3, int(round(0.3 * math.sqrt(area[i]))))  # ring width grows with the region
        sl = objects[i - 1]
        a0, a1 = max(sl[0].start - r - 1, 0), min(sl[0].stop + r + 1, rows)
        b0, b1 = max(sl[1].start - r - 1, 0), min(sl[1].stop + r + 1, cols)
        mask = labels[a0:a1, b0:b1] == i
        ring = ndi.binary_dilation(mask, iterations=r) & ~mask
        inside = float(img[a0:a1, b0:b1][mask].mean()) / scale
        around = float(img[a0:a1, b0:b1][ring].mean()) / scale if ring.any() else inside
        rr, cc = np.nonzero(mask)
        h, w = rr.max() - rr.min() + 1, cc.max() - cc.min() + 1
        edge = max(float(perimeter(mask)), 1.0)
        out.append(
            [
                math.log(max(mass[i], 1e-9) / labels.size),
                math.log(max(mass[i], 1e-9) / strongest),
                mass[i] / area[i],
                peak[k],
                math.log(area[i] / labels.size),
                (rr.mean() + a0) / rows,
                abs((cc.mean() + b0) / cols - 0.5),
                math.log((inside + eps) / (around + eps)),
                math.log(h / w),
                math.log(max(edge**2 / (4 * math.pi * area[i]), 1e-3)),
            ]
        )
    return np.array(out, np.float64).reshape(len(ids), len(REGION_FEATURES))


def region_scores(fit, labels: np.ndarray, prob: np.ndarray, image: np.ndarray, ids) -> np.ndarray:
    """The fit's probability that each region of `ids` is the lesion."""
    return np.array([fit.probability(x) for x in region_features(labels, prob, image, ids)])


def choice_rows(segmenter, dataset, modality: str = "US", limit: int | None = None, progress=None, cancel=None):
    """(features (N, F), is_lesion (N,), frames (N,)) of every region that
    `segmenter` draws, before it drops weak (or low-peak) ones, on the
    images of `modality` with a lesion mask in a loader of `io.datasets`
    (its first `limit`): a region is the lesion where its Dice against the
    truth is at least `MATCH_DICE`; `frames` numbers the image each region
    lies in."""
    from ..scoring.metrics import dice
    from .progress import Progress, check_cancel

    loose = segmenter.with_options(weak_ratio=0.0, min_peak=0.0)  # every region the threshold draws
    loose.lesion_choice = None
    rows, truth, frames = [], [], []
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(total):
        check_cancel(cancel, f"at image {i + 1} of {total}")
        s = dataset[i]
        target = s.lesion_target() > 0 if s.modality == modality else None
        if target is not None and target.any():
            spacing = s.spacing if s.meta.get("spacing_known") else None
            seg = loose.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
            ids = np.arange(1, int(seg.lesion_labels.max()) + 1)
            if len(ids):
                rows.append(region_features(seg.lesion_labels, seg.lesion_probability, s.image, ids))
                truth += [dice(seg.lesion_labels == k, target) >= MATCH_DICE for k in ids]
                frames += [i] * len(ids)
        if progress is not None:
            progress(Progress("prepare", i + 1, total, unit="image"))
    x = np.concatenate(rows) if rows else np.zeros((0, len(REGION_FEATURES)))
    return x, np.array(truth, bool), np.array(frames, int)
