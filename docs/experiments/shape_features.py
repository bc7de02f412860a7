"""Which more features of the drawn ultrasound lesion rank benign vs
malignant better, beside those of `engine.lesion_class.FEATURES`: fitted
on BUS-BRA fold 2 (the choosing patients) as `calibrate-class` fits, the
AUC on fold 1 (held out), whole frames through the shipped default's
Segmenter, its class head alone.

Candidates (BI-RADS descriptors a radiologist reads):
  echo      mean inside the lesion over a ring around it (log): hypo- / isoechoic
  texture   spread inside over its mean: heterogeneous echo pattern
  solidity  area over its convex hull's: angular, lobulated, spiculated margins
  edge      a thin ring outside over a thin ring inside (log): an echogenic halo, a sharp edge

    python docs/experiments/shape_features.py
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

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
from napari_avpt.io import weights
from napari_avpt.scoring.metrics import roc_auc

B = "../shared/data/bus-bra/BUSBRA"
EXTRA = ("echo", "texture", "solidity", "edge")


def extra_features(lesion: np.ndarray, image: np.ndarray) -> list[float]:
    from skimage.measure import regionprops

    img = np.asarray(image, np.float32)
    region = regionprops(lesion.astype(np.uint8))[0]
    side = max(2, int(round(0.25 * np.sqrt(region.area))))
    ring = ndimage.binary_dilation(lesion, iterations=side) & ~lesion
    inner = lesion & ~ndimage.binary_erosion(lesion, iterations=max(1, side // 2))
    outer = ndimage.binary_dilation(lesion, iterations=max(1, side // 2)) & ~lesion
    inside = img[lesion]
    eps = 1.0
    return [
        float(np.log((inside.mean() + eps) / (img[ring].mean() + eps))) if ring.any() else 0.0,
        float(inside.std() / (inside.mean() + eps)),
        float(region.solidity),
        float(np.log((img[outer].mean() + eps) / (img[inner].mean() + eps))) if outer.any() and inner.any() else 0.0,
    ]


def rows(spec: str):
    model, meta = load_model(weights.default_prompts())
    seg = Segmenter(model, threshold=meta["thresholds"], class_shape=None)
    dataset, _ = open_folder_spec(spec)
    x, y = [], []
    for i in range(len(dataset)):
        s = dataset[i]
        if s.label not in ("benign", "malignant"):
            continue
        out = seg.segment_image(s.image, s.modality)
        if not out.lesion_labels.any():
            continue
        lesion = strongest_lesion(out.lesion_labels, out.lesion_probability)
        base = lesion_features(malignant_share(out.class_probabilities), lesion, s.image)
        x.append(np.concatenate([base, extra_features(lesion, s.image)]))
        y.append(s.label == "malignant")
    return np.array(x), np.array(y)


def main() -> None:
    xf, yf = rows(f"{B}:folds=2")
    xt, yt = rows(f"{B}:folds=1")
    names = FEATURES + EXTRA
    print(f"fit on {len(yf)} fold-2 frames, scored on {len(yt)} fold-1 frames")
    base = list(range(len(FEATURES)))
    print(f"head alone: fold-1 AUC {roc_auc(xt[:, 0], yt):.3f}")
    for extra in [()] + [(e,) for e in EXTRA] + list(itertools.combinations(EXTRA, 2)) + [EXTRA]:
        cols = base + [names.index(e) for e in extra]
        fit = fit_shape(xf[:, cols], yf, features=tuple(names[c] for c in cols))
        p_fit = [fit.malignancy(r) for r in xf[:, cols]]
        p = [fit.malignancy(r) for r in xt[:, cols]]
        weights_ = ", ".join(f"{names[c]} {w:+.2f}" for c, w in zip(cols, fit.weights, strict=True))
        print(
            f"{'+'.join(extra) or 'FEATURES':24s} fold-2 AUC {roc_auc(np.array(p_fit), yf):.3f}  "
            f"fold-1 AUC {roc_auc(np.array(p), yt):.3f}  ({weights_})"
        )


if __name__ == "__main__":
    main()
