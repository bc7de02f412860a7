"""Does the anatomy reach the lesion? One row of the benchmark (joint:
MG,US,MR; few-shot: one modality) for A-VPT with other ways of using the
tissue maps, or a baseline, with ModelConfig fields set on the command
line. The same data, seeds, epochs and held-out set as `napari-avpt bench`
(`napari_avpt.bench._method_run`: 20 phantoms of each modality of seed
1000 * (SEED + 1), 45 held-out of seed 90001, batch 8, no early stop);
`tissue=truth` gives the model the phantoms' true tissue labels instead
of the classical priors, in training and test. Prints one JSON line.
Session 13, docs/model.md ("Does the anatomy help?").

Usage: python docs/experiments/anatomy_variants.py SEED [mods=MG,US,MR] [epochs=20]
       [n_train=20] [tissue=anatomy|truth] [FIELD=VALUE ...]   (e.g. method=avpt tissue_attention=True)"""

import json
import sys
import time

import torch

from napari_avpt.bench import phantom_set
from napari_avpt.engine import build_model
from napari_avpt.engine.evaluate import evaluate
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.model import ModelConfig


def value(text: str):
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    seed = int(sys.argv[1])
    options = {k: value(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])}
    mods = tuple(str(options.pop("mods", "MG,US,MR")).split(","))
    tissue, epochs = options.pop("tissue", "anatomy"), options.pop("epochs", 20)
    n_train = options.pop("n_train", 20)  # the benchmark's few-shot MRI row uses 8 (2 volumes)
    torch.set_num_threads(1)  # two runs side by side, as the benchmark's --jobs 2
    train_set = phantom_set(mods, n_train, 1000 * (seed + 1), 224, tissue)
    test_set = phantom_set(mods, 45, 90_001, 224, tissue)
    model, sha = build_model(ModelConfig(**options), "weights/vit_tiny_mae_phantoms.safetensors", seed=seed)
    start = time.perf_counter()
    result = train(model, train_set, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
    metrics = evaluate(model, test_set, torch.device("cpu"), threshold=result.final_thresholds)["per_modality"]
    row = {
        "seed": seed,
        "mods": ",".join(mods),
        "tissue": tissue,
        "epochs": epochs,
        **options,
        "best_epoch": result.best_epoch,
        "seconds": round(time.perf_counter() - start),
        "dice": {m: round(metrics[m]["dice"] or 0, 3) for m in mods},
        "auc": {m: round(metrics[m]["auc"] or 0, 3) for m in mods},
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
