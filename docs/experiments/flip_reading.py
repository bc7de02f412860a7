"""The shipped default read once and with its mirror image averaged in
(`Segmenter(flip_average=...)`), whole images through the Segmenter's
rules, scored as `bench --part real` scores them.

    python docs/experiments/flip_reading.py ../shared/data/bus-bra/BUSBRA:folds=2
    python docs/experiments/flip_reading.py ../shared/data/mini-mias/all-mias:folds=2
"""

from __future__ import annotations

import sys

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io import weights

KEYS = ("dice", "iou", "malignant_auc", "class_accuracy", "masses_found", "false_lesions_per_image", "normals_clean")

model, meta = load_model(weights.default_prompts())
for flip in (False, True):
    seg = Segmenter(model, threshold=meta["thresholds"], class_shape=meta["class_shape"], flip_average=flip)
    dataset, first = open_folder_spec(sys.argv[1])
    m = score_dataset(seg, dataset, limit=first)["summary"]
    print(f"flip_average={flip}:", {k: m[k] for k in KEYS if m.get(k) is not None}, flush=True)
