"""Benign vs malignant from the class head and the drawn lesion's shape.

On ultrasound a radiologist reads malignancy off the lesion itself
(BI-RADS): a large mass, taller than wide, with an irregular margin and a
dark shadow behind it. The class head sees the whole frame at 14 x 14
tokens. On BUS-BRA validation patients the lesion's size and its height
over width each rank malignancy almost as well as the head, and a logistic
regression of the head's p(malignant) and the drawn lesion's shape,
fitted there, ranks held-out patients better than either
(`docs/experiments/NOTES.md`).

A prompt set carries its fit as metadata (`class_shape`: the modality,
feature names, their means and spreads, weights and bias), and a set
tuned from it carries the same fit over (`carried_meta`): tuned on 100
BUS-BRA frames, the head alone ranked held-out patients at AUC 0.732 and
with the starting set's fit 0.787 (`docs/experiments/NOTES.md`);
`napari-avpt calibrate-class` fits one to the new head.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import AvptError

FEATURES = ("head", "log_area_share", "log_height_over_width", "log_compactness", "log_posterior_ratio")


def _log_ratio(a: float, b: float) -> float:
    eps = 1e-3  # a black band (0 / 0) is no shadow
    return float(np.log((a + eps) / (b + eps)))


def malignant_share(class_probabilities: dict) -> float:
    """p(malignant) among benign and malignant (the class head's, given its output)."""
    b, m = class_probabilities["benign"], class_probabilities["malignant"]
    return m / max(b + m, 1e-9)


def strongest_lesion(labels: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The mask of the drawn lesion with the most probability mass."""
    mass = np.bincount(labels.ravel(), weights=probability.ravel())
    mass[0] = 0.0  # the background is no lesion
    return labels == int(np.argmax(mass))


def lesion_features(head: float, lesion: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The features of `FEATURES` for one lesion (a 2D mask on the image's
    grid, not empty), `head` the class head's p(malignant) among benign
    and malignant. Depth runs down the frame, as ultrasound is shown."""
    from skimage.measure import regionprops

    lesion = np.asarray(lesion, bool)
    region = regionprops(lesion.astype(np.uint8))[0]
    r0, c0, r1, c1 = region.bbox
    h, w = r1 - r0, c1 - c0
    img = np.asarray(image, np.float32)
    # Posterior acoustic features: the band below the lesion against the
    # bands of the same depth beside it.
    below = img[r1 : r1 + h, c0:c1]
    beside = np.concatenate([img[r1 : r1 + h, max(c0 - w, 0) : c0].ravel(), img[r1 : r1 + h, c1 : c1 + w].ravel()])
    posterior = _log_ratio(below.mean(), beside.mean()) if below.size and beside.size else 0.0
    perimeter = max(float(region.perimeter), 1.0)
    return np.array(
        [
            head,
            math.log(region.area / lesion.size),
            math.log(h / w),
            math.log(max(perimeter**2 / (4 * math.pi * region.area), 1e-3)),
            posterior,
        ]
    )


@dataclass(frozen=True)
class ShapeFit:
    """A logistic regression of `FEATURES`, standardised by `mean` and
    `scale`: p(malignant) = sigmoid(weights . (x - mean) / scale + bias)."""

    modality: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    features: tuple[str, ...] = FEATURES

    def malignancy(self, x: np.ndarray) -> float:
        z = (np.asarray(x, np.float64) - np.array(self.mean)) / np.array(self.scale)
        return float(1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias))))

    probability = malignancy  # the same regression fits other questions (`lesion_choice`)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_meta(
        cls, raw, name: str = "the prompt set", features: tuple[str, ...] = FEATURES, key: str = "class_shape"
    ) -> ShapeFit | None:
        """The fit a prompt set's metadata holds (a JSON string, under `key`,
        of `features`), None when it has none; `AvptError` for one this
        version cannot use."""
        if raw is None:
            return None
        try:
            d = json.loads(raw) if isinstance(raw, str) else dict(raw)
            fit = cls(
                modality=str(d["modality"]),
                mean=tuple(float(v) for v in d["mean"]),
                scale=tuple(float(v) for v in d["scale"]),
                weights=tuple(float(v) for v in d["weights"]),
                bias=float(d["bias"]),
                features=tuple(str(v) for v in d["features"]),
            )
        except (TypeError, ValueError, KeyError) as e:
            raise AvptError(f"{name}: unreadable {key} metadata ({e})") from None
        n = len(features)
        finite = all(math.isfinite(v) for v in (*fit.mean, *fit.scale, *fit.weights, fit.bias))
        if fit.features != features or not (len(fit.mean) == len(fit.scale) == len(fit.weights) == n) or not finite:
            raise AvptError(f"{name}: its {key} metadata is not for the features {', '.join(features)}")
        if min(fit.scale) <= 0:
            raise AvptError(f"{name}: its {key} metadata has a zero or negative spread")
        return fit


def carried_meta(meta: dict, source: str) -> dict[str, str]:
    """The metadata a set tuned from the set `source` (its metadata `meta`
    as `load_model` returns it) takes over: its class-from-shape fit,
    its zoomed second look (`zoom_look`) and its choice of the lesion among
    drawn regions (`lesion_choice`), where it has them."""
    out = {"zoom_look": json.dumps(meta["zoom_look"])} if meta.get("zoom_look") else {}
    if meta.get("lesion_choice") is not None:
        note = f"carried over from {source} ({meta.get('lesion_choice_data', 'fitted')})"
        out.update({"lesion_choice": meta["lesion_choice"].to_json(), "lesion_choice_data": note})
    fit = meta.get("class_shape")
    if fit is None:
        return out
    note = f"carried over from {source} ({meta.get('class_shape_data', 'fitted')})"
    return {**out, "class_shape": fit.to_json(), "class_shape_data": note}


def fit_shape(
    x: np.ndarray, malignant: np.ndarray, modality: str = "US", l2: float = 1e-2, features: tuple[str, ...] = FEATURES
) -> ShapeFit:
    """A `ShapeFit` of rows of `lesion_features` (N, F) and their truth:
    logistic regression on standardised features, L2-penalised, by LBFGS.
    `features` names the columns (a prompt set only loads `FEATURES`)."""
    import torch

    x, y = np.asarray(x, np.float64), np.asarray(malignant, bool)
    if len(y) < 10 or y.all() or not y.any():
        raise AvptError("fitting the class from lesion shape needs at least 10 lesions, benign and malignant both")
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0  # a constant feature gets weight 0 anyway
    xt = torch.tensor((x - mean) / scale)
    yt = torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return ShapeFit(
        modality=modality,
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        weights=tuple(w.detach().numpy().tolist()),
        bias=float(b.detach()),
        features=tuple(features),
    )


def shape_rows(segmenter, dataset, modality: str = "US", limit: int | None = None, progress=None, cancel=None):
    """(features (N, F), malignant (N,)) of the benign and malignant images
    of `modality` in a loader of `io.datasets` (its first `limit`) on which
    `segmenter` draws a lesion, whole images through its rules, the class
    head alone (any shape fit it has is not used)."""
    import copy

    from .progress import Progress, check_cancel

    plain = copy.copy(segmenter)
    plain.class_shape = None
    rows, truth = [], []
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(total):
        check_cancel(cancel, f"at image {i + 1} of {total}")
        s = dataset[i]
        if s.modality == modality and s.label in ("benign", "malignant"):
            spacing = s.spacing if s.meta.get("spacing_known") else None
            seg = plain.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
            if seg.lesion_labels.any():
                lesion = strongest_lesion(seg.lesion_labels, seg.lesion_probability)
                rows.append(lesion_features(malignant_share(seg.class_probabilities), lesion, s.image))
                truth.append(s.label == "malignant")
        if progress is not None:
            progress(Progress("prepare", i + 1, total, unit="image"))
    return np.array(rows).reshape(len(rows), len(FEATURES)), np.array(truth, bool)
