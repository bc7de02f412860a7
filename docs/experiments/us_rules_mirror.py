"""The ultrasound lesion threshold and weak-region ratio again, now that
frames are read with their mirror image (`infer.FLIP_AVERAGE`): whole
frames of the choosing patients (BUS-BRA fold 2) through the shipped
default's Segmenter, lesion Dice and IoU for each setting.

    python docs/experiments/us_rules_mirror.py
"""

from __future__ import annotations

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io import weights

SPEC = "../shared/data/bus-bra/BUSBRA:folds=2"

model, meta = load_model(weights.default_prompts())
base = Segmenter(model, threshold=meta["thresholds"], class_shape=meta["class_shape"])
dataset, _ = open_folder_spec(SPEC)
print("the set's US threshold:", meta["thresholds"]["US"])
for threshold, weak in [(0.25, 0.5), (0.30, 0.5), (0.35, 0.5), (0.40, 0.5), (0.45, 0.5), (0.35, 0.25), (0.35, 0.75)]:
    m = score_dataset(base.with_options(threshold=threshold, weak_ratio=weak), dataset)["summary"]
    print(f"threshold {threshold:.2f}, weak ratio {weak:.2f}: Dice {m['dice']:.3f}, IoU {m['iou']:.3f}", flush=True)
