"""Ultrasound lesion Dice of a prompt set when each frame is covered by
more, smaller views at inference (`views.MAX_VIEWS["US"]`; training saw one
view per frame), by lesion size band (`dice_by_size.SIZE_BANDS`). Whether
small lesions are lost to the 14 x 14 token grid. Run from the repository root:

    .venv/bin/python docs/experiments/us_views.py ../shared/data/bus-bra/BUSBRA:folds=2 150 1 2 4
    (spec, frames, then the view counts to try)
"""

import sys

import numpy as np
from dice_by_size import band_means  # beside this script

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
    share = [t.mean() for t in truths]
    for n in counts:
        MAX_VIEWS["US"] = n
        scores = np.array(
            [dice(segmenter.segment_image(s.image, "US").lesion_labels > 0, t) for s, t in zip(samples, truths)]
        )
        parts = "  ".join(f"{m:.3f}" for m in band_means(scores, share))
        print(f"views {n}: Dice {scores.mean():.3f}; by size band (< 4.1 %, 4.1-9.3 %, > 9.3 %): {parts}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]])
