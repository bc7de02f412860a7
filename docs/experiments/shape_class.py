"""Benign vs malignant from the drawn lesion's shape as well as the class
head: does what a radiologist reads on ultrasound (BI-RADS: an irregular,
not circumscribed margin, taller than wide, a dark posterior shadow) add
to the head's AUC? One Segmenter pass per frame (the shipped default, its
rules); features of the lesion drawn; a logistic regression fitted on the
first spec's frames and scored on the second's. Run from the repository
root with the data beside it:

    .venv/bin/python docs/experiments/shape_class.py ../shared/data/bus-bra/BUSBRA:folds=2 \
        ../shared/data/bus-bra/BUSBRA:folds=1
"""

import sys

import numpy as np
import torch
from skimage.measure import regionprops

from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import roc_auc

NAMES = [
    "head p(malignant)",
    "log area share",
    "solidity",
    "taller than wide",
    "compactness",
    "mean probability",
    "inside / ring intensity",
    "below / beside intensity",
    "regions drawn",
]


def features(seg, image: np.ndarray) -> list[float]:
    p = seg.class_probabilities
    head = p["malignant"] / max(p["malignant"] + p["benign"], 1e-6)
    labels = seg.lesion_labels
    if not labels.any():
        return [head, np.log(1e-4), 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    masses = np.bincount(labels.ravel(), weights=seg.lesion_probability.ravel())
    masses[0] = 0
    main = labels == int(np.argmax(masses))  # the strongest region
    r = regionprops(main.astype(np.uint8))[0]
    r0, c0, r1, c1 = r.bbox
    h, w = r1 - r0, c1 - c0
    img = image.astype(np.float32)
    pad = max(h, w) // 2
    ring = np.zeros_like(main)
    ring[max(r0 - pad, 0) : r1 + pad, max(c0 - pad, 0) : c1 + pad] = True
    ring &= ~main
    below = img[r1 : r1 + h, c0:c1]
    beside = np.concatenate([img[r1 : r1 + h, max(c0 - w, 0) : c0].ravel(), img[r1 : r1 + h, c1 : c1 + w].ravel()])
    eps = 1e-3
    return [
        head,
        float(np.log(r.area / main.size)),
        float(r.solidity),
        float(h / max(w, 1)),
        float(r.perimeter**2 / (4 * np.pi * r.area)),
        float(seg.lesion_probability[main].mean()),
        float((img[main].mean() + eps) / (img[ring].mean() + eps)) if ring.any() else 1.0,
        float((below.mean() + eps) / (beside.mean() + eps)) if below.size and beside.size else 1.0,
        float(labels.max()),
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
        x.append(features(seg, s.image))
        y.append(s.label == "malignant")
    return np.array(x, np.float64), np.array(y)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2):
    """A logistic regression on standardised features (LBFGS, L2)."""
    mean, sd = x.mean(0), x.std(0) + 1e-9
    xt, yt = torch.tensor((x - mean) / sd), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach().numpy(), float(b.detach())
    return lambda z: (z - mean) / sd @ w + b, w


def main(train_spec: str, test_spec: str) -> None:
    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, threshold=meta["thresholds"])
    xa, ya = collect(segmenter, train_spec)
    xb, yb = collect(segmenter, test_spec)
    print(f"fitted on {len(ya)} frames ({ya.mean():.0%} malignant), scored on {len(yb)} ({yb.mean():.0%})")
    for k, name in enumerate(NAMES):
        print(f"  {name:26s} AUC alone on the test frames {roc_auc(xb[:, k], yb):.3f}")
    rows = (
        ("head only", [0]),
        ("shape only", list(range(1, len(NAMES)))),
        ("head + shape", None),
        ("head + size, taller, margin, shadow", [0, 1, 3, 4, 7]),
        ("head + size, taller", [0, 1, 3]),
    )
    for name, cols in rows:
        cols = list(range(len(NAMES))) if cols is None else cols
        score, w = fit(xa[:, cols], ya)
        weights = ", ".join(f"{NAMES[c].split()[0]} {v:+.2f}" for c, v in zip(cols, w))
        print(f"{name:36s} test AUC {roc_auc(score(xb[:, cols]), yb):.3f}  ({weights})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
