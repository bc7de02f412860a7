"""A baseline with A-VPT's modality-conditioned lesion decoder (FiLM on the
modality code, 4 fuse units per modality): is A-VPT's lead in joint
training its prompts or its decoder? One row of the benchmark's joint part
(`napari_avpt.bench.methods._method_run`: the same data, seeds, epochs and
held-out set), with the baseline's shared decoder swapped for the decoder
an A-VPT model of the same seed starts from (docs/experiments/NOTES.md).
(`napari-avpt bench --same-decoder` builds such baselines itself; its
prompts and class head are drawn after a different decoder construction,
so its rows are not these to the digit.)

Usage: python docs/experiments/baseline_modality_decoder.py METHOD SEED [EPOCHS]"""

import sys
import time

import torch

from napari_avpt.bench import phantom_set
from napari_avpt.engine import build_model
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig

method, seed = sys.argv[1], int(sys.argv[2])
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
torch.set_num_threads(1)  # two seeds side by side, as the benchmark's --jobs 2
weights = "weights/vit_tiny_mae_phantoms.safetensors"
train_set = phantom_set(("MG", "US", "MR"), 20, 1000 * (seed + 1), 224, "anatomy")
test_set = phantom_set(("MG", "US", "MR"), 45, 90_001, 224, "anatomy")
model, sha = build_model(ModelConfig(method=method), weights, seed=seed)
avpt, _ = build_model(ModelConfig(method="avpt"), weights, seed=seed)
model.decoder = avpt.decoder  # drawn first in both: the same draw A-VPT's run starts from
start = time.perf_counter()
result = train(model, train_set, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
metrics = evaluate(model, test_set, torch.device("cpu"), threshold=result.final_thresholds)
print(
    method,
    "+ modality decoder, seed",
    seed,
    "best epoch",
    result.best_epoch,
    {m: round(metrics["per_modality"][m]["dice"] or 0, 3) for m in ("MG", "US", "MR")},
    "AUC",
    {m: round(metrics["per_modality"][m]["auc"] or 0, 3) for m in ("MG", "US", "MR")},
    f"{time.perf_counter() - start:.0f} s",
)
