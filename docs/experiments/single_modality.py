"""One method trained on one modality alone, as the benchmark's few-shot
part trains it (phantoms of seed 1000 * (SEED + 1), batch 8, the final
prompts at their calibrated thresholds), scored on the held-out set
(15 phantoms of seed 90001). Used for the session-6 notes in
docs/benchmarks.md: A-VPT's few-shot seeds on ultrasound, and how many
mammograms it takes to learn a mass.

Usage: python docs/experiments/single_modality.py METHOD MODALITY N_TRAIN EPOCHS SEED"""

import sys
import time

import torch

from napari_avpt.engine import build_model
from napari_avpt.engine.data import phantom_mix
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

method, modality, n, epochs, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
start = time.time()
examples = phantom_mix((modality,), n, 1000 * (seed + 1), 224, "anatomy")
model, sha = build_model(ModelConfig(method=method), "weights/vit_tiny_mae_phantoms.safetensors", seed=seed)
result = train(model, examples, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
test = phantom_mix((modality,), 15, 90_001, 224, "anatomy")
m = evaluate(model, test, torch.device("cpu"), threshold=result.final_thresholds)["per_modality"][modality]
print(
    f"{method} {modality} n={n} epochs={epochs} seed={seed}: Dice {m['dice']:.3f}, global Dice {m['global_dice']:.3f}, "
    f"lesion-free clean {m['clean']}, thresholds {result.final_thresholds}, {time.time() - start:.0f} s"
)
