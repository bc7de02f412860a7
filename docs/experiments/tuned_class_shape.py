"""A set tuned from the default takes its class from its own head: would
carrying the default's class-from-shape fit over do better? Tunes the
default on the first N frames of TRAIN with the dock's settings (as
`bench --part real-tuning`), then scores the tuned set on TEST with its
head alone and with the default's fit copied in. Run from the repository
root with the data beside it:

    .venv/bin/python docs/experiments/tuned_class_shape.py ../shared/data/bus-bra/BUSBRA:folds=2 \
        ../shared/data/bus-bra/BUSBRA:folds=1 100
"""

import sys
import tempfile
from pathlib import Path

from napari_avpt.bench.real import real_benchmark
from napari_avpt.engine import backbone_meta_of, load_model
from napari_avpt.engine.checkpoints import read_metadata, with_metadata
from napari_avpt.engine.data import parse_data_spec
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.io.weights import default_prompts


def main(train_spec: str, test_spec: str, n: int) -> None:
    init = default_prompts()
    model, meta = load_model(init)
    examples = parse_data_spec(f"{train_spec}:n={n}", model.cfg.img_size, 0, "anatomy")
    cfg = TrainConfig(epochs=20, batch_size=8, lr=1e-2, val_fraction=0.2, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        tuned = Path(folder) / "tuned.safetensors"
        train(model, examples, cfg, tuned, meta["backbone_sha256"], extra_meta=backbone_meta_of(meta))
        carried = with_metadata(
            tuned, Path(folder) / "carried.safetensors", {"class_shape": read_metadata(init)["class_shape"]}
        )
        for name, prompts in (("tuned, its head alone", tuned), ("tuned, the default's fit carried", carried)):
            m = real_benchmark(prompts, [test_spec])[test_spec]["summary"]
            print(f"{name:34s} Dice {m['dice']:.3f}, AUC {m['malignant_auc']:.3f}, accuracy {m['class_accuracy']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
