"""Lesions drawn beside the main one: what dropping the weaker regions
would do to the default's figures, on the lesions the Segmenter draws (the
benchmark's `lesion_labels`). A region is kept when its probability mass
(the sum of the lesion probability over it) is at least RATIO times the
strongest region's; RATIO 1 keeps the strongest alone. Ultrasound: one
pass with every region kept (`weak_ratio=0`), then the engine's own rule
(`Segmenter._instances` at each ratio) on the returned probability;
`--thresholds` also at other lesion thresholds, and `--free` segments each
frame's lesion-free band (`data.lesion_free_box`, what training saw as
lesion-free ultrasound) and counts those left clean at each threshold.
Mammograms: the benchmark's own scoring (masses found, false lesions,
normals clean), one pass per ratio. Run from the repository root with the
data beside it:

    .venv/bin/python docs/experiments/weak_regions.py ../shared/data/bus-bra/BUSBRA:folds=2 0.25 0.5 1
    .venv/bin/python docs/experiments/weak_regions.py ../shared/data/mini-mias/all-mias:folds=2 0.25 0.5 1
    .venv/bin/python docs/experiments/weak_regions.py ../shared/data/bus-bra/BUSBRA:folds=2 0.5 \
        --thresholds 0.3 0.35 0.45 0.5 --free
"""

import argparse

import numpy as np

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.data import lesion_free_box, open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice


def main(spec: str, ratios: list[float], thresholds: list[float], free: bool = False) -> None:
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
    scores = {(t, r): [] for t in [None, *thresholds] for r in [0.0, *ratios]}
    regions = []
    clean = {t: [] for t in [None, *thresholds]}
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        truth = s.lesion_target() > 0
        if not truth.any():
            continue
        spacing = s.spacing if s.meta.get("spacing_known") else None  # as the benchmark calls it
        seg = segmenter.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
        regions.append(int(seg.lesion_labels.max()))
        for t, r in scores:
            # The shipped rule itself, on the probability this pass returned;
            # at the file's threshold and ratio 0 it must give back the labels drawn.
            drawn = segmenter.with_options(weak_ratio=r)._instances(
                seg.lesion_probability, seg.threshold if t is None else t, spacing, s.modality
            )
            if (t, r) == (None, 0.0) and not np.array_equal(drawn > 0, seg.lesion_labels > 0):
                raise SystemExit(f"frame {i}: the rule on the returned probability differs from the pass")
            scores[t, r].append(dice(drawn > 0, truth))
        if free:
            box = lesion_free_box(truth)
            if box is not None:  # the lesion-free crop the training saw: is it left clean?
                r0, r1, c0, c1 = box
                crop = segmenter.segment_image(s.image[r0:r1, c0:c1], s.modality, window=s.meta.get("window"))
                for t in clean:
                    p = crop.lesion_probability
                    clean[t].append(not segmenter._instances(p, crop.threshold if t is None else t, None, "US").any())
    regions = np.array(regions)
    counts = (("none", regions == 0), ("one", regions == 1), ("more", regions > 1))
    shares = ", ".join(f"{k} {np.mean(m):.0%}" for k, m in counts)
    print(f"{len(regions)} frames; regions drawn: {shares}")
    base = np.array(scores[None, 0.0])
    for (t, r), values in scores.items():
        v = np.array(values)
        name = ("as drawn" if r == 0 else f"mass >= {r:g} x the main's") + ("" if t is None else f", threshold {t:g}")
        print(f"{name:42s} mean Dice {v.mean():.3f}, frames changed {np.mean(v != base):.0%}")
    for t, values in clean.items() if free else ():
        name = "file's threshold" if t is None else f"threshold {t:g}"
        print(f"lesion-free crops left clean, {name}: {np.mean(values):.0%} of {len(values)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="a data spec, PATH[:folds=..][:n=..]")
    parser.add_argument("ratios", nargs="*", type=float, help="weak-region ratios besides 0")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[], help="ultrasound: also these thresholds")
    parser.add_argument("--free", action="store_true", help="ultrasound: also segment each frame's lesion-free crop")
    args = parser.parse_args()
    main(args.spec, args.ratios, args.thresholds, args.free)
