"""Ultrasound lesion Dice of a prompt set when each frame is covered by
more, smaller views at inference (`views.MAX_VIEWS["US"]`; training saw one
view per frame), split by lesion size (share of the frame). Whether small
lesions are lost to the 14 x 14 token grid. Run from the repository root:

    .venv/bin/python docs/experiments/us_views.py ../shared/data/bus-bra/BUSBRA:folds=2 150 1 2 4
    (spec, frames, then the view counts to try)
"""

import sys

import numpy as np

from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.views import MAX_VIEWS
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice


def main(spec, frames, counts):
    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, threshold=meta["thresholds"])
    dataset, _ = open_folder_spec(spec)
    samples = [dataset[i] for i in range(min(frames, len(dataset)))]
    truths = [s.lesion_target() > 0 for s in samples]
    share = np.array([t.mean() for t in truths])
    edges = np.percentile(share, [33.3, 66.7])
    tertile = np.digitize(share, edges)
    for n in counts:
        MAX_VIEWS["US"] = n
        scores = np.array(
            [dice(segmenter.segment_image(s.image, "US").lesion_labels > 0, t) for s, t in zip(samples, truths)]
        )
        parts = "  ".join(f"tertile {k + 1} {scores[tertile == k].mean():.3f}" for k in range(3))
        print(f"views {n}: Dice {scores.mean():.3f}  ({parts}; lesion share edges {edges.round(3)})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]])
