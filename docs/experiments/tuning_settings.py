"""The tuning dock's settings on real frames: what to tune (everything,
or the lesion decoder alone) and at which learning rate, from the shipped
default, on the first 20 and 100 BUS-BRA frames of fold 2, scored on the
held-out fold 1 (whole frames through the Segmenter). The starting
prompts are a candidate for the best epoch (`TrainConfig.score_start`).

    python docs/experiments/tuning_settings.py all:1e-2 decoder:2e-3 > tuning.json
"""

from __future__ import annotations

import json
import sys

from napari_avpt.bench.real import tuning_on_real
from napari_avpt.io import weights

B = "../shared/data/bus-bra/BUSBRA"

rows = []
for setting in sys.argv[1:]:
    tune, lr = setting.split(":")
    for row in tuning_on_real(
        weights.default_prompts(), f"{B}:folds=2", f"{B}:folds=1", (20, 100), tune=tune, lr=float(lr), score_init=False
    ):
        keys = ("frames", "seconds", "tune", "lr", "best_epoch", "dice", "iou", "malignant_auc")
        rows.append({k: row[k] for k in keys})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
print(json.dumps(rows, indent=1))
