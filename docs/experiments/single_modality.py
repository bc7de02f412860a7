"""One method trained on one modality alone, as the benchmark's few-shot
part trains it (phantoms of seed 1000 * (SEED + 1), batch 8, the final
prompts at their calibrated thresholds), scored on held-out phantoms of
seed 90001 (15 unless N_TEST is given). Extra FIELD=VALUE arguments set
ModelConfig fields. Used for the findings in docs/experiments/NOTES.md:
A-VPT's few-shot seeds on ultrasound, how many mammograms it takes to
learn a mass, what the class head reads (`45 class_from=image|lesion-final|lesion-taps`)
and the fuse's width (`45 fuse_channels=4|8|16`).

Usage: python docs/experiments/single_modality.py METHOD MODALITY N_TRAIN EPOCHS SEED [N_TEST [FIELD=VALUE ...]]"""

import sys
import time

import torch

from napari_avpt.engine import build_model
from napari_avpt.engine.data import phantom_mix
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig


def _value(text: str):
    return int(text) if text.lstrip("-").isdigit() else {"true": True, "false": False}.get(text.lower(), text)


method, modality, n, epochs, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
n_test = int(sys.argv[6]) if len(sys.argv) > 6 else 15
fields = {k: _value(v) for k, v in (a.split("=", 1) for a in sys.argv[7:])}
start = time.time()
examples = phantom_mix((modality,), n, 1000 * (seed + 1), 224, "anatomy")
model, sha = build_model(ModelConfig(method=method, **fields), "weights/vit_tiny_mae_phantoms.safetensors", seed=seed)
result = train(model, examples, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
test = phantom_mix((modality,), n_test, 90_001, 224, "anatomy")
m = evaluate(model, test, torch.device("cpu"), threshold=result.final_thresholds)["per_modality"][modality]
auc = "–" if m["auc"] is None else f"{m['auc']:.3f}"
print(
    f"{method} {modality} n={n} epochs={epochs} seed={seed} {fields}: Dice {m['dice']:.3f}, "
    f"global Dice {m['global_dice']:.3f}, lesion-free clean {m['clean']}, class AUC {auc}, "
    f"accuracy {m['accuracy']:.3f}, thresholds {result.final_thresholds}, {time.time() - start:.0f} s"
)
