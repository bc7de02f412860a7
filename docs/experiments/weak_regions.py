"""Lesions drawn beside the main one: what dropping the weaker regions
would do to the default's figures, on the lesions the Segmenter draws (the
benchmark's `lesion_labels`). A region is kept when its probability mass
(the sum of the lesion probability over it) is at least RATIO times the
strongest region's; RATIO 1 keeps the strongest alone. Ultrasound: one
pass with every region kept (`weak_ratio=0`), then the engine's own rule
(`Segmenter._instances` at each ratio) on the returned probability.
Mammograms: the benchmark's own scoring (masses found, false lesions,
normals clean), one pass per ratio. Run from the repository root with the
data beside it:

    .venv/bin/python docs/experiments/weak_regions.py ../shared/data/bus-bra/BUSBRA:folds=2 0.25 0.5 1
    .venv/bin/python docs/experiments/weak_regions.py ../shared/data/mini-mias/all-mias:folds=2 0.25 0.5 1
"""

import sys

import numpy as np

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice


def main(spec: str, ratios: list[float]) -> None:
    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, threshold=meta["thresholds"], weak_ratio=0.0)
    dataset, first = open_folder_spec(spec)
    if dataset[0].modality == "MG":
        for r in [0.0, *ratios]:
            m = score_dataset(segmenter.with_options(weak_ratio=r), dataset, limit=first)["summary"]
            print(
                f"ratio {r:g}: masses found {m['masses_found']:.0%} of {m['masses']}, false lesions per image "
                f"{m['false_lesions_per_image']:.2f}, normals clean {m['normals_clean']:.0%} of {m['normals']}"
            )
        return
    scores = {r: [] for r in [0.0, *ratios]}
    regions = []
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        truth = s.lesion_target() > 0
        if not truth.any():
            continue
        spacing = s.spacing if s.meta.get("spacing_known") else None  # as the benchmark calls it
        seg = segmenter.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
        regions.append(int(seg.lesion_labels.max()))
        for r in scores:
            # The shipped rule itself, on the probability this pass returned;
            # at ratio 0 it must give back the labels drawn.
            drawn = segmenter.with_options(weak_ratio=r)._instances(
                seg.lesion_probability, seg.threshold, spacing, s.modality
            )
            if r == 0 and not np.array_equal(drawn > 0, seg.lesion_labels > 0):
                raise SystemExit(f"frame {i}: the rule on the returned probability differs from the pass")
            scores[r].append(dice(drawn > 0, truth))
    regions = np.array(regions)
    counts = (("none", regions == 0), ("one", regions == 1), ("more", regions > 1))
    shares = ", ".join(f"{k} {np.mean(m):.0%}" for k, m in counts)
    print(f"{len(regions)} frames; regions drawn: {shares}")
    for r, values in scores.items():
        v = np.array(values)
        name = "as drawn" if r == 0 else f"mass >= {r:g} x the main's"
        print(f"{name:28s} mean Dice {v.mean():.3f}, frames changed {np.mean(v != np.array(scores[0.0])):.0%}")


if __name__ == "__main__":
    main(sys.argv[1], [float(a) for a in sys.argv[2:]])
