"""Metrics of a model on prepared examples: lesion Dice and IoU, class
accuracy and AUC, overall and per modality, per image (its views merged)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..metrics import dice, iou, macro_auc
from ..model import AVPT
from ..model.config import MODALITY_INDEX
from .data import Example, ExampleDataset
from .device import autocast
from .views import merge_class, merge_maps

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


def per_image(examples: list[Example], lesion_prob: np.ndarray, class_prob: np.ndarray, threshold: float = 0.5):
    """Views merged back into their images (as `Segmenter` merges them):
    yields (predicted mask, true mask, class probabilities, label,
    modality) per image or slice. A single view is compared on the model
    grid, several on their image's grid."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.group or e.id, []).append(i)
    for idx in groups.values():
        first = examples[idx[0]]
        if len(idx) == 1:
            pred, truth = lesion_prob[idx[0]] > threshold, first.lesion[0].numpy() > 0.5
            yield pred, truth, class_prob[idx[0]], first.label, first.modality
            continue
        fits = [examples[i].fit for i in idx]
        prob = merge_maps(fits, torch.from_numpy(np.ascontiguousarray(lesion_prob[idx]))[:, None])[0]
        truth = merge_maps(fits, torch.stack([examples[i].lesion for i in idx]))[0] > 0.5
        mass = (lesion_prob[idx] > threshold).reshape(len(idx), -1).sum(1)
        label = max(examples[i].label for i in idx)  # normal < benign < malignant: the view with the lesion
        yield prob > threshold, truth, merge_class(class_prob[idx], mass), label, first.modality


def summarize(examples: list[Example], lesion_prob: np.ndarray, class_prob: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics per image (views merged), overall and per modality."""
    pred, truth, class_prob, labels, mods = zip(*per_image(examples, lesion_prob, class_prob, threshold))
    class_prob, labels, mods = np.array(class_prob), np.array(labels), np.array(mods)
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

    metrics = block(np.ones(len(labels), bool))
    metrics["per_modality"] = {MODALITY_NAMES[m]: block(mods == m) for m in np.unique(mods)}
    return metrics


def evaluate(model: AVPT, examples: list[Example], device: torch.device, batch_size: int = 16) -> dict:
    lesion_prob, class_prob = predict(model, examples, device, batch_size)
    return summarize(examples, lesion_prob, class_prob)
