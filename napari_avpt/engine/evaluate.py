"""Metrics of a model on prepared examples: lesion Dice and IoU, class
accuracy and AUC, overall and per modality."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..metrics import dice, iou, macro_auc
from ..model import AVPT
from ..model.config import MODALITY_INDEX
from .data import Example, ExampleDataset
from .device import autocast

MODALITY_NAMES = {v: k for k, v in MODALITY_INDEX.items()}


@torch.no_grad()
def predict(model: AVPT, examples: list[Example], device: torch.device, batch_size: int = 16):
    """(lesion probabilities (N, S, S), class probabilities (N, 3))."""
    model.eval()
    loader = DataLoader(ExampleDataset(examples), batch_size=batch_size, shuffle=False)
    masks, probs = [], []
    for batch in loader:
        with autocast(device):
            out = model(batch["image"].to(device), batch["tissue"].to(device), batch["modality"].to(device))
        masks.append(torch.sigmoid(out.lesion_logits.float())[:, 0].cpu())
        probs.append(torch.softmax(out.class_logits.float(), -1).cpu())
    return torch.cat(masks).numpy(), torch.cat(probs).numpy()


def summarize(examples: list[Example], lesion_prob: np.ndarray, class_prob: np.ndarray, threshold: float = 0.5) -> dict:
    truth = [e.lesion[0].numpy() > 0.5 for e in examples]
    labels = np.array([e.label for e in examples])
    mods = np.array([e.modality for e in examples])
    pred = lesion_prob > threshold
    per = {
        "dice": np.array([dice(p, t) for p, t in zip(pred, truth)]),
        "iou": np.array([iou(p, t) for p, t in zip(pred, truth)]),
    }
    has_lesion = np.array([t.any() for t in truth])

    def block(sel: np.ndarray) -> dict:
        lesion_sel = sel & has_lesion
        out = {
            "n": int(sel.sum()),
            "dice": float(per["dice"][lesion_sel].mean()) if lesion_sel.any() else None,
            "iou": float(per["iou"][lesion_sel].mean()) if lesion_sel.any() else None,
            "accuracy": float((class_prob[sel].argmax(1) == labels[sel]).mean()) if sel.any() else None,
            "auc": macro_auc(class_prob[sel], labels[sel]) if sel.any() else None,
        }
        return out

    metrics = block(np.ones(len(examples), bool))
    metrics["per_modality"] = {MODALITY_NAMES[m]: block(mods == m) for m in np.unique(mods)}
    return metrics


def evaluate(model: AVPT, examples: list[Example], device: torch.device, batch_size: int = 16) -> dict:
    lesion_prob, class_prob = predict(model, examples, device, batch_size)
    return summarize(examples, lesion_prob, class_prob)
