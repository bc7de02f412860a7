"""What the class head reads (ModelConfig.class_from), A-VPT few-shot on
one modality: 20 phantoms (MRI: 5 volumes) of seed 1000 * (SEED + 1),
batch 8, scored on 45 held-out phantoms of seed 90001 (MRI: 11 volumes),
so that the class AUC rests on more than the benchmark's 15. Session 9
(docs/model.md, class head).

Usage: python docs/experiments/class_input.py METHOD MODALITY N_TRAIN EPOCHS SEED CLASS_FROM"""

import sys
import time

import torch

from napari_avpt.engine import build_model
from napari_avpt.engine.data import phantom_mix
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

method, modality, n, epochs, seed, class_from = sys.argv[1:7]
n, epochs, seed = int(n), int(epochs), int(seed)
start = time.time()
examples = phantom_mix((modality,), n, 1000 * (seed + 1), 224, "anatomy")
config = ModelConfig(method=method, class_from=class_from)
model, sha = build_model(config, "weights/vit_tiny_mae_phantoms.safetensors", seed=seed)
result = train(model, examples, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
test = phantom_mix((modality,), 45, 90_001, 224, "anatomy")
m = evaluate(model, test, torch.device("cpu"), threshold=result.final_thresholds)["per_modality"][modality]
print(
    f"{method} {class_from} {modality} seed={seed}: Dice {m['dice']:.3f}, class AUC {m['auc']:.3f}, "
    f"accuracy {m['accuracy']:.3f}, {time.time() - start:.0f} s"
)
