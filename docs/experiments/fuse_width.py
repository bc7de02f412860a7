"""A-VPT few-shot with a given number of hidden units in the decoder's
full-resolution fuse (GELU): 20 phantoms of one modality, seed
1000 * (SEED + 1), 10 epochs, 45 held-out phantoms of seed 90001.
Session 9 (docs/benchmarks-speed.md): is the 16-unit fuse worth its cost?

Usage: python docs/experiments/fuse_width.py MODALITY SEED FUSE_CHANNELS"""

import sys
import time

import torch

from napari_avpt.engine import build_model
from napari_avpt.engine.data import phantom_mix
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

mod, seed, fuse = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
ex = phantom_mix((mod,), 20, 1000 * (seed + 1), 224, "anatomy")
weights = "weights/vit_tiny_mae_phantoms.safetensors"
model, sha = build_model(ModelConfig(method="avpt", fuse_channels=fuse), weights, seed=seed)
res = train(model, ex, TrainConfig(epochs=10, batch_size=8, seed=seed, patience=10), None, sha)
test = phantom_mix((mod,), 45, 90_001, 224, "anatomy")
q = evaluate(model, test, torch.device("cpu"), threshold=res.final_thresholds)["per_modality"][mod]
print(f"fuse {fuse} {mod} seed={seed}: Dice {q['dice']:.3f} AUC {q['auc']:.3f} ({time.time() - t0:.0f} s)")
