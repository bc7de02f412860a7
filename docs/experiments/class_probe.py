"""Does the frozen backbone carry benign-against-malignant, and where?
Logistic probes (napari_avpt.scoring.probe) on the image's mean token and on the
tokens pooled by the ground-truth lesion mask, over views with a lesion:
90 training phantoms per modality (seed 1000), 60 held out (seed 90001),
pretrained and random backbones (docs/experiments/NOTES.md, the class head).

Usage: python docs/experiments/class_probe.py"""

import numpy as np
import torch

from napari_avpt.engine.backbones import create_backbone
from napari_avpt.engine.data import phantom_mix
from napari_avpt.scoring.metrics import roc_auc
from napari_avpt.scoring.probe import fit_logistic, token_features


def features(vit, examples):
    tokens, mean, share = token_features(vit, examples)
    weights = share / share.sum(1, keepdim=True).clamp_min(1e-6)
    return mean, (weights[..., None] * tokens).sum(1)


for name, weights in (("pretrained", "weights/vit_tiny_mae_phantoms.safetensors"), ("random", None)):
    vit = create_backbone("vit_tiny_patch16_224", 224, weights=weights, seed=0)
    for m in ("MG", "US", "MR"):
        train = [e for e in phantom_mix((m,), 90, 1000, 224) if e.label > 0 and e.lesion.any()]
        test = [e for e in phantom_mix((m,), 60, 90_001, 224) if e.label > 0 and e.lesion.any()]
        y_train = torch.tensor([e.label == 2 for e in train]).long()
        y_test = np.array([e.label == 2 for e in test])
        aucs = []
        for a, b in zip(features(vit, train), features(vit, test)):
            mu, sd = a.mean(0), a.std(0) + 1e-6
            w, bias = fit_logistic((a - mu) / sd, y_train, 1, 1e-2)
            aucs.append(roc_auc((((b - mu) / sd) @ w + bias)[:, 0].numpy(), y_test))
        print(f"{name} {m}: malignant-vs-benign AUC, mean token {aucs[0]:.3f}, lesion-pooled {aucs[1]:.3f}", flush=True)
