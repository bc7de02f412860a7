"""Benign vs malignant from the drawn lesion's shape as well as the class
head: does what a radiologist reads on ultrasound (BI-RADS: a large mass,
taller than wide, an irregular margin, a dark posterior shadow) add to the
head's AUC? One Segmenter pass per frame (the shipped default, its rules,
the class head alone); the engine's `lesion_class.lesion_features` of the
strongest drawn lesion plus a few more tried here; the engine's
`fit_shape` fitted on the first spec's frames and scored on the second's.
Frames with no lesion drawn are left out (the Segmenter keeps the head's
class there). Run from the repository root with the data beside it:

    .venv/bin/python docs/experiments/shape_class.py ../shared/data/bus-bra/BUSBRA:folds=2 \
        ../shared/data/bus-bra/BUSBRA:folds=1
"""

import sys

import numpy as np
from skimage.measure import regionprops

from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.lesion_class import (
    FEATURES,
    fit_shape,
    lesion_features,
    malignant_share,
    strongest_lesion,
)
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import roc_auc

EXTRA = ("solidity", "mean probability", "log inside / ring intensity", "regions drawn")
NAMES = (*FEATURES, *EXTRA)


def extra_features(seg, lesion: np.ndarray, image: np.ndarray) -> list[float]:
    """What else was tried (not shipped): how convex, how sure, how dark
    against its surroundings, how many regions."""
    r0, c0, r1, c1 = regionprops(lesion.astype(np.uint8))[0].bbox
    pad = max(r1 - r0, c1 - c0) // 2
    ring = np.zeros_like(lesion)
    ring[max(r0 - pad, 0) : r1 + pad, max(c0 - pad, 0) : c1 + pad] = True
    ring &= ~lesion
    img = image.astype(np.float32)
    contrast = np.log((img[lesion].mean() + 1e-3) / (img[ring].mean() + 1e-3)) if ring.any() else 0.0
    return [
        float(regionprops(lesion.astype(np.uint8))[0].solidity),
        float(seg.lesion_probability[lesion].mean()),
        float(contrast),
        float(seg.lesion_labels.max()),
    ]


def collect(segmenter, spec: str):
    dataset, first = open_folder_spec(spec)
    x, y = [], []
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        if s.label not in ("benign", "malignant"):
            continue
        spacing = s.spacing if s.meta.get("spacing_known") else None
        seg = segmenter.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
        if not seg.lesion_labels.any():
            continue
        lesion = strongest_lesion(seg.lesion_labels, seg.lesion_probability)
        shipped = lesion_features(malignant_share(seg.class_probabilities), lesion, s.image)
        x.append([*shipped, *extra_features(seg, lesion, s.image)])
        y.append(s.label == "malignant")
    return np.array(x, np.float64), np.array(y)


def main(train_spec: str, test_spec: str) -> None:
    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, threshold=meta["thresholds"])  # no shape fit: the head alone
    xa, ya = collect(segmenter, train_spec)
    xb, yb = collect(segmenter, test_spec)
    print(f"fitted on {len(ya)} frames ({ya.mean():.0%} malignant), scored on {len(yb)} ({yb.mean():.0%})")
    for k, name in enumerate(NAMES):
        print(f"  {name:28s} AUC alone on the test frames {roc_auc(xb[:, k], yb):.3f}")
    n = len(FEATURES)
    rows = (
        ("head only", [0]),
        ("shape only (shipped 4)", list(range(1, n))),
        ("head + shape (shipped)", list(range(n))),
        ("head + size, height / width", [0, 1, 2]),
        ("shipped + all tried", list(range(len(NAMES)))),
    )
    for name, cols in rows:
        fit = fit_shape(xa[:, cols], ya, features=tuple(NAMES[c] for c in cols))
        score = np.array([fit.malignancy(r) for r in xb[:, cols]])
        weights = ", ".join(f"{NAMES[c]} {v:+.2f}" for c, v in zip(cols, fit.weights))
        print(f"{name:30s} test AUC {roc_auc(score, yb):.3f}  ({weights})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
