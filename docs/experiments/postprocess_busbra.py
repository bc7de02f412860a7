"""Where the shipped default's ultrasound Dice goes: per-frame Dice, area
ratio, precision and recall on BUS-BRA validation patients (fold 2), and
what post-processing would change (keeping the main region, hysteresis,
a flipped second look). Run from the repository root with the data beside it:

    .venv/bin/python docs/experiments/postprocess_busbra.py ../shared/data/bus-bra/BUSBRA:folds=2
"""

import sys

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold

from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts


def dice(a, b):
    s = a.sum() + b.sum()
    return 2 * (a & b).sum() / s if s else 1.0


def main(spec):
    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, threshold=meta["thresholds"])
    t = meta["thresholds"]["US"]
    dataset, first = open_folder_spec(spec)
    rows = {k: [] for k in ("plain", "flip", "main region", "regions >= half the main", "hysteresis")}
    ratio, precision, recall = [], [], []
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        truth = s.lesion_target() > 0
        if not truth.any():
            continue
        p = segmenter.segment_image(s.image, "US").lesion_probability
        f = segmenter.segment_image(s.image[:, ::-1].copy(), "US").lesion_probability[:, ::-1]
        m = p > t
        rows["plain"].append(dice(m, truth))
        rows["flip"].append(dice((p + f) / 2 > t, truth))
        lab, k = ndi.label(m)
        mass = np.asarray(ndi.sum(p, lab, range(1, k + 1))) if k else np.zeros(0)
        rows["main region"].append(dice(lab == 1 + int(np.argmax(mass)), truth) if k else 0.0)
        keep = np.flatnonzero(mass >= 0.5 * mass.max()) + 1 if k else []
        rows["regions >= half the main"].append(dice(np.isin(lab, keep), truth) if k else 0.0)
        rows["hysteresis"].append(dice(apply_hysteresis_threshold(p, t, 0.9), truth))
        ratio.append(m.sum() / truth.sum())
        precision.append((m & truth).sum() / max(m.sum(), 1))
        recall.append((m & truth).sum() / truth.sum())
    plain = np.array(rows["plain"])
    print(f"{len(plain)} frames; Dice below 0.1: {np.mean(plain < 0.1):.0%}, above 0.8: {np.mean(plain > 0.8):.0%}")
    print(f"median Dice {np.median(plain):.3f}, precision {np.median(precision):.3f}, recall {np.median(recall):.3f}")
    print("drawn / true area, percentiles 10, 25, 50, 75, 90:", np.percentile(ratio, [10, 25, 50, 75, 90]).round(2))
    for name, values in rows.items():
        print(f"{name:28s} mean Dice {np.mean(values):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
