"""One method trained jointly on several modalities as the benchmark's
methods part trains it (20 phantoms of each, seed 1000 * (SEED + 1), 10
epochs, batch 8), with each epoch's validation Dice and global Dice per
modality, then the held-out test (15 phantoms of seed 90001). Used for
the notes on the modality-conditioned decoder (docs/experiments/NOTES.md): with a shared decoder, joint
training drew nothing on mammograms at any epoch on three seeds of five.

Usage: python docs/experiments/joint_epochs.py MG,US,MR SEED [METHOD] [epochs=N] [n_train=N] [FIELD=VALUE ...]
(`epochs`, `n_train`: instead of the benchmark's 10 epochs and 20 phantoms; other
FIELD=VALUE pairs are ModelConfig fields, e.g. fuse_channels=16; the shared,
unconditioned decoder it was first run with is at commit dea8a8d)"""

import sys
import time

import torch

from napari_avpt.bench import phantom_set
from napari_avpt.engine import build_model
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

options = {k: int(v) if v.isdigit() else v for k, v in (a.split("=") for a in sys.argv[1:] if "=" in a)}
argv = [a for a in sys.argv if "=" not in a]
mods = tuple(argv[1].split(","))
seed = int(argv[2])
method = argv[3] if len(argv) > 3 else "avpt"
epochs, n_train = options.pop("epochs", 10), options.pop("n_train", 20)
t = time.time()
tr = phantom_set(mods, n_train, 1000 * (seed + 1), 224, "anatomy")
te = phantom_set(mods, 15, 90_001, 224, "anatomy")
print(
    {m: sum(e.modality == i for e in tr) for i, m in enumerate(("MG", "US", "MR"))},
    "lesion views",
    {m: sum((e.modality == i) and bool(e.lesion.any()) for e in tr) for i, m in enumerate(("MG", "US", "MR"))},
)
model, sha = build_model(
    ModelConfig(method=method, **options),
    "weights/vit_tiny_mae_phantoms.safetensors",
    seed=seed,
)
r = train(model, tr, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
for h in r.history:
    v = h["val"]
    pm = v.get("per_modality", {})
    print(
        h["epoch"],
        round(h["train_loss"], 3),
        h["thresholds"],
        {m: (round(pm[m]["dice"] or 0, 3), round(pm[m]["global_dice"] or 0, 3)) for m in pm},
    )
m = evaluate(model, te, torch.device("cpu"), threshold=r.final_thresholds)["per_modality"]
print(
    "test",
    {k: (round(v["dice"] or 0, 3), round(v["global_dice"] or 0, 3)) for k, v in m.items()},
    r.final_thresholds,
    round(time.time() - t),
)
