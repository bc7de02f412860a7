"""Does the anatomy reach the lesion? One row of the benchmark (joint:
MG,US,MR; few-shot: one modality) for A-VPT with other ways of using the
tissue maps, or a baseline, with ModelConfig fields set on the command
line. The same data, seeds, epochs and held-out set as `napari-avpt bench`
(it runs `napari_avpt.bench.methods._method_run`: 20 phantoms of each modality
of seed 1000 * (SEED + 1), 45 held-out of seed 90001, batch 8, no early
stop); `tissue=truth` gives the model the phantoms' true tissue labels instead
of the classical priors, in training and test. Prints one JSON line.
docs/experiments/NOTES.md ("Does the anatomy help?").

Usage: python docs/experiments/anatomy_variants.py SEED [mods=MG,US,MR] [epochs=20]
       [n_train=20] [tissue=anatomy|truth] [FIELD=VALUE ...]   (e.g. method=avpt tissue=truth)"""

import json
import sys

from napari_avpt.bench.methods import _method_run


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
    method = options.pop("method", "avpt")
    task = {
        "modalities": mods,
        "seed": seed,
        "n_train": n_train,
        "n_test": 45,
        "epochs": epochs,
        "img_size": 224,
        "tissue": tissue,
        "threads": 1,  # two runs side by side, as the benchmark's --jobs 2
        "same_decoder": options.pop("baseline_modality_decoder", False),
        "backbone": "pretrained",
        "weights": "weights/vit_tiny_mae_phantoms.safetensors",
        "method": method,
        "config": options,  # the other ModelConfig fields
    }
    run = _method_run(task)
    row = {
        "seed": seed,
        "mods": ",".join(mods),
        "tissue": tissue,
        "epochs": epochs,
        "method": method,
        **({"baseline_modality_decoder": True} if task["same_decoder"] else {}),
        **options,
        "best_epoch": run["best_epoch"],
        "seconds": round(run["train_seconds"]),
        "dice": {m: round(run[m]["dice"] or 0, 3) for m in mods},
        "auc": {m: round(run[m]["auc"] or 0, 3) for m in mods},
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
