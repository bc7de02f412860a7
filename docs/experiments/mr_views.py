"""MRI: one view of the breasts' band vs one view per breast, trained on
MRI alone (12 phantom volumes, 8 epochs) and scored on 12 held-out volumes
(seed 90001). Usage: python docs/experiments/mr_views.py VIEWS SEED"""

import sys
import time

import torch

from napari_avpt.engine import build_model, views
from napari_avpt.engine.data import phantom_examples
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

torch.set_num_threads(1)
views.MAX_VIEWS["MR"] = int(sys.argv[1])
seed = int(sys.argv[2])
start = time.time()
model, _ = build_model(ModelConfig(method="avpt"), "weights/vit_tiny_mae_phantoms.safetensors")
examples = phantom_examples("MR", 12, seed, 224, "anatomy")
train(model, examples, TrainConfig(epochs=8, batch_size=8, patience=30, seed=seed, device="cpu"))
m = evaluate(model, phantom_examples("MR", 12, 90001, 224, "anatomy"), torch.device("cpu"))
print(f"MR views {sys.argv[1]} seed {seed}: {len(examples)} views, Dice {m['dice']:.3f}, AUC {m['auc']:.3f}")
print(f"{time.time() - start:.0f} s")
