"""The Segmenter's choice of the lesion among an ultrasound frame's drawn
regions (`engine/lesion_choice.py`): frame Dice when regions are ranked
by probability mass and by a fit of `REGION_FEATURES` (or a subset),
keeping regions of at least half the best's rank (`WEAK_RATIO` US 0.5) or
the best alone. The fit is scored by 5-fold cross-validation over the
spec's patients (fitted on four fifths, scored on the rest), so the figure
is not an in-sample one. Each frame is segmented once with every region
kept (its zoomed look at the region of most mass: this measures the
ranking alone, not the look following it); the rules are then applied to
that probability as `segment_image` does. Run from the repository root
with the data beside it:

    .venv/bin/python docs/experiments/lesion_choice.py ../shared/data/bus-bra/BUSBRA:folds=2
    (--prompts SET: another prompt set; --drop NAME ...: leave features out)
"""

import argparse

import numpy as np

from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.evaluate import threshold_for
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.lesion_choice import MATCH_DICE, REGION_FEATURES, region_features
from napari_avpt.engine.lesion_class import ShapeFit, fit_shape
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice


def main(spec, prompts, drop):
    model, meta = load_model(prompts or default_prompts())
    base = Segmenter.for_set(model, meta)
    base.lesion_choice = None
    loose = base.with_options(weak_ratio=0.0)
    dataset, first = open_folder_spec(spec)
    frames = []
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        truth = s.lesion_target() > 0
        if not truth.any():
            continue
        spacing = s.spacing if s.meta.get("spacing_known") else None
        seg = loose.segment_image(s.image, "US", spacing=spacing)
        ids = np.arange(1, int(seg.lesion_labels.max()) + 1)
        x = region_features(seg.lesion_labels, seg.lesion_probability, s.image, ids)
        y = np.array([dice(seg.lesion_labels == k, truth) >= MATCH_DICE for k in ids], bool)
        frames.append((s.meta.get("patient", s.id), seg.lesion_probability, s.image, spacing, truth, x, y))
    keep = [i for i, name in enumerate(REGION_FEATURES) if name not in drop]
    names = tuple(REGION_FEATURES[i] for i in keep)
    patients = sorted({f[0] for f in frames})
    split = {p: k % 5 for k, p in enumerate(np.random.default_rng(0).permutation(patients))}
    scores = {"mass, half": [], "mass, best alone": [], "fit, half": [], "fit, best alone": []}
    for part in range(5):
        train = [f for f in frames if split[f[0]] != part]
        x, y = np.concatenate([f[5][:, keep] for f in train]), np.concatenate([f[6] for f in train])
        fit = _padded(fit_shape(x, y, "US", features=names), keep)
        for f in (f for f in frames if split[f[0]] == part):
            _, prob, image, spacing, truth = f[:5]
            for name in scores:
                by_fit = name.startswith("fit")
                seg = base.with_options(weak_ratio=0.5 if name.endswith("half") else 1.0)
                seg.lesion_choice = fit if by_fit else None
                labels = seg._instances(prob, threshold_for(seg.threshold, "US"), spacing, "US", None, image)
                scores[name].append(dice(labels > 0, truth))
    print(f"{len(frames)} frames, {len(patients)} patients; features: {', '.join(names)}")
    for name, v in scores.items():
        print(f"{name:18s} Dice {np.mean(v):.4f}")


def _padded(fit, keep):
    """A fit of a subset of the features as one of all of them (weight 0 on the others)."""
    n = len(REGION_FEATURES)
    mean, scale, weights = [0.0] * n, [1.0] * n, [0.0] * n
    for j, i in enumerate(keep):
        mean[i], scale[i], weights[i] = fit.mean[j], fit.scale[j], fit.weights[j]
    return ShapeFit("US", tuple(mean), tuple(scale), tuple(weights), fit.bias, REGION_FEATURES)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="a data spec with lesion masks, PATH[:folds=..][:n=..]")
    parser.add_argument("--prompts", help="a prompt set (default: the shipped one)")
    parser.add_argument("--drop", nargs="*", default=[], choices=REGION_FEATURES, help="features left out")
    args = parser.parse_args()
    main(args.spec, args.prompts, set(args.drop))
