"""Does sharing the lesion decoder across modalities cost ultrasound Dice?
The shipped A-VPT set's block taps are computed once (prompts and backbone
frozen, no augmentation) for the default's whole training mix (BUS-BRA and
mini-MIAS folds 3-5, phantoms of the three modalities) and its validation
patients; a newly drawn decoder of the shipped shape is trained on the
ultrasound views alone and on the whole mix, and each is scored per view,
per modality, at the shipped thresholds. Run from the repository root:

    .venv/bin/python docs/experiments/decoder_sharing.py ../shared/data/bus-bra/BUSBRA \
        ../shared/data/mini-mias/all-mias 12
    (the BUS-BRA folder, the mini-MIAS folder, then epochs per decoder)
"""

import sys
import time

import numpy as np
import torch
from decoder_capacity import cached, fit

from napari_avpt.engine import load_model
from napari_avpt.engine.data import parse_data_spec
from napari_avpt.io.weights import default_prompts
from napari_avpt.model.config import MODALITY_INDEX
from napari_avpt.model.heads import SegmentationDecoder


def examples(specs):
    out = []
    for spec in specs:
        out += parse_data_spec(spec, 224, seed=0, tissue="anatomy")
    return out


def subset(data, keep):
    return tuple(t[keep] for t in data)


@torch.no_grad()
def per_modality(decoder, data, grid, thresholds, batch=64):
    taps, images, lesions, mods = data
    out = {}
    for name, code in MODALITY_INDEX.items():
        idx = (mods == code).nonzero()[:, 0]
        dices = []
        for i in range(0, len(idx), batch):
            j = idx[i : i + batch]
            x = images[j].float().expand(-1, 3, -1, -1)
            prob = torch.sigmoid(decoder(taps[j].float(), grid, x, mods[j]))
            for p, t in zip(prob[:, 0] > thresholds[name], lesions[j, 0]):
                if t.any():
                    dices.append(float(2 * (p & t).sum() / (p.sum() + t.sum())))
        if dices:
            out[name] = round(float(np.mean(dices)), 3)
    return out


def main(busbra, mias, epochs):
    torch.set_num_threads(2)
    model, meta = load_model(default_prompts())
    model.eval()
    thresholds = {k: float(v) for k, v in meta["thresholds"].items()}
    grid = model.grid
    start = time.perf_counter()
    phantoms = ["phantoms:MG:40", "phantoms:US:30", "phantoms:MR:16"]
    train = examples([f"{busbra}:folds=3,4,5", f"{mias}:folds=3,4,5", *phantoms])
    busbra_val = examples([f"{busbra}:folds=2"])
    val = busbra_val + examples([f"{mias}:folds=2", "phantoms:MG:12:7", "phantoms:US:12:7", "phantoms:MR:4:7"])
    train_t, val_t = cached(model, train), cached(model, val)
    counts = {k: int((train_t[3] == v).sum()) for k, v in MODALITY_INDEX.items()}
    print(f"{len(train)} training views {counts}, {len(val)} validation; taps in {time.perf_counter() - start:.0f} s")
    print("shipped decoder:", per_modality(model.decoder, val_t, grid, thresholds), flush=True)
    us = (train_t[3] == MODALITY_INDEX["US"]).nonzero()[:, 0]  # BUS-BRA and the US phantoms
    # The epoch is chosen on real ultrasound (BUS-BRA fold 2, the first views), as decoder_capacity.py does.
    us_val = subset(val_t, torch.arange(len(busbra_val)))
    dim, n_taps = model.vit.embed_dim, len(model.taps)
    for name, data in {"ultrasound views alone": subset(train_t, us), "the whole mix": train_t}.items():
        torch.manual_seed(0)
        decoder = SegmentationDecoder(dim, n_taps, 16, 16, 8, 3, 4, n_modalities=3, fuse_per_modality=True)
        t0 = time.perf_counter()
        print(f"{name}:", flush=True)
        d, c, e = fit(decoder, data, us_val, grid, thresholds["US"], epochs)
        decoder.eval()
        last = per_modality(decoder, val_t, grid, thresholds)
        seconds = time.perf_counter() - t0
        print(f"{name}: best US Dice {d:.3f} (epoch {e}); last epoch {last}; {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
