"""Whether the frozen-tap decoder's per-view gain (decoder_capacity.py) reaches
whole images: a newly drawn decoder of the shipped shape is trained on the
shipped set's frozen BUS-BRA taps (folds 3-5, no augmentation) and put into a
copy of the set, for `napari-avpt bench --part real` on BUS-BRA alone (its
mammogram and MRI lesions are not trained and not meant to be scored).

    .venv/bin/python docs/experiments/decoder_graft.py ../shared/data/bus-bra/BUSBRA 12 runs/graft/us.safetensors
    napari-avpt bench --part real --prompts runs/graft/us.safetensors --real-data ../shared/data/bus-bra/BUSBRA:folds=2
"""

import sys
from pathlib import Path

import torch
from decoder_capacity import cached, fit

from napari_avpt.engine import load_model
from napari_avpt.engine.checkpoints import read_metadata, save_prompt_set
from napari_avpt.engine.data import dataset_examples, open_folder_spec
from napari_avpt.io.weights import default_prompts
from napari_avpt.model.heads import SegmentationDecoder

KEPT = ("format", "format_version", "napari_avpt_version", "method", "backbone", "backbone_sha256", "img_size")


def main(folder, epochs, out):
    torch.set_num_threads(2)
    model, meta = load_model(default_prompts())
    model.eval()
    train = cached(model, dataset_examples(open_folder_spec(f"{folder}:folds=3,4,5")[0], 224, "anatomy"))
    val = cached(model, dataset_examples(open_folder_spec(f"{folder}:folds=2")[0], 224, "anatomy"))
    torch.manual_seed(0)
    dim, n_taps = model.vit.embed_dim, len(model.taps)
    decoder = SegmentationDecoder(dim, n_taps, 16, 16, 8, 3, 4, n_modalities=3, fuse_per_modality=True)
    d, c, e = fit(decoder, train, val, model.grid, float(meta["thresholds"]["US"]), epochs)
    print(f"best validation Dice {d:.3f} (epoch {e}); the last epoch's decoder is kept", flush=True)
    model.decoder = decoder.eval()
    saved = read_metadata(default_prompts())  # as stored (load_model's meta holds parsed objects)
    extra = {k: v for k, v in saved.items() if k not in KEPT and k not in ("tissues", "config")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_prompt_set(out, model, meta["backbone_sha256"], extra={**extra, "grafted_decoder": "US frozen taps"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
