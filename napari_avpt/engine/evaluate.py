"""Metrics of a model on prepared examples: lesion Dice and IoU, class
accuracy and AUC, overall and per modality, per image (its views merged)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..model import AVPT
from ..model.config import MODALITY_INDEX
from ..scoring.metrics import dice, iou, macro_auc
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


Thresholds = float | dict[str, float]

# Lesion thresholds tried when calibrating on validation images. Low ones
# too: early in training (a few annotated mammograms, a benchmark's budget)
# a small lesion's probability rises only to about 0.1 while the background
# stays far below; the old floor of 0.15 then kept 0.5 and drew nothing
# (mammograms alone, 20 images, 10 epochs: 0.10 and 0.05 chosen on two of three seeds).
CANDIDATES = tuple(round(float(t), 2) for t in np.arange(0.05, 0.951, 0.05))
MIN_LESION_IMAGES = 3  # fewer validation images with a lesion keep 0.5


def threshold_for(thresholds: Thresholds | None, modality: str) -> float:
    """The lesion threshold of one modality: a number applies to all, a
    mapping by modality name falls back to 0.5."""
    if thresholds is None:
        return 0.5
    if isinstance(thresholds, dict):
        return float(thresholds.get(modality, 0.5))
    return float(thresholds)


def merged_lesions(examples: list[Example], lesion_prob: np.ndarray):
    """Views merged back into their images (as `Segmenter` merges them):
    yields (example indices, lesion probability, true mask) per image or
    slice. A single view is compared on the model grid, several on their
    image's grid."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.group or e.id, []).append(i)
    for idx in groups.values():
        if len(idx) == 1:
            yield idx, lesion_prob[idx[0]], examples[idx[0]].lesion[0].numpy() > 0.5
            continue
        fits = [examples[i].fit for i in idx]
        prob = merge_maps(fits, torch.from_numpy(np.ascontiguousarray(lesion_prob[idx]))[:, None])[0]
        truth = merge_maps(fits, torch.stack([examples[i].lesion for i in idx]))[0] > 0.5
        yield idx, prob, truth


def per_image(
    examples: list[Example], lesion_prob: np.ndarray, class_prob: np.ndarray, threshold: Thresholds | None = 0.5
):
    """(predicted mask, true mask, class probabilities, label, modality)
    per image or slice, views merged back."""
    for idx, prob, truth in merged_lesions(examples, lesion_prob):
        first = examples[idx[0]]
        t = threshold_for(threshold, MODALITY_NAMES[first.modality])
        if len(idx) == 1:
            yield prob > t, truth, class_prob[idx[0]], first.label, first.modality
            continue
        mass = (lesion_prob[idx] > t).reshape(len(idx), -1).sum(1)
        label = max(examples[i].label for i in idx)  # normal < benign < malignant: the view with the lesion
        yield prob > t, truth, merge_class(class_prob[idx], mass), label, first.modality


def global_dice(pairs) -> float | None:
    """Dice of (prediction, truth) pairs pooled over all their pixels:
    2 sum(TP) / (sum(predicted) + sum(true)). Lesions drawn on lesion-free
    images (or MRI slices) count, by their area, and drawing nothing scores
    0: the mean Dice over images with a lesion sees neither, and a model
    tuned on it draws a lesion on every slice. None without any lesion."""
    tp = predicted = true = 0
    for pred, truth in pairs:
        tp += int(np.count_nonzero(pred & truth))
        predicted += int(np.count_nonzero(pred))
        true += int(np.count_nonzero(truth))
    return 2.0 * tp / (predicted + true) if true else None


def calibrate_thresholds(examples: list[Example], lesion_prob: np.ndarray) -> dict[str, float]:
    """Per modality, the lesion threshold with the best `global_dice` on
    these (validation) images. A model trained with a Dice loss is
    over-confident at a lesion's edge (a token-wide halo above 0.5 around
    small lesions) and draws false lesions, and how much differs between
    modalities; 0.5 is kept where fewer than MIN_LESION_IMAGES images have a
    lesion, and on ties."""
    by_modality: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for idx, prob, truth in merged_lesions(examples, lesion_prob):
        by_modality.setdefault(MODALITY_NAMES[examples[idx[0]].modality], []).append((prob, truth))
    thresholds = {}
    for modality, pairs in by_modality.items():
        enough = sum(t.any() for _, t in pairs) >= MIN_LESION_IMAGES
        best, best_score = 0.5, -1.0
        for t in sorted(CANDIDATES, key=lambda c: abs(c - 0.5)) if enough else [0.5]:
            score = global_dice((p > t, truth) for p, truth in pairs) or 0.0
            if score > best_score + 1e-6:
                best, best_score = t, score
        thresholds[modality] = best
    return thresholds


def summarize(
    examples: list[Example], lesion_prob: np.ndarray, class_prob: np.ndarray, threshold: Thresholds | None = 0.5
) -> dict:
    """Metrics per image (views merged), overall and per modality; the
    threshold is one number or one per modality."""
    pred, truth, class_prob, labels, mods = zip(*per_image(examples, lesion_prob, class_prob, threshold))
    class_prob, labels, mods = np.array(class_prob), np.array(labels), np.array(mods)
    per = {
        "dice": np.array([dice(p, t) for p, t in zip(pred, truth)]),
        "iou": np.array([iou(p, t) for p, t in zip(pred, truth)]),
    }
    has_lesion = np.array([t.any() for t in truth])
    drawn = np.array([p.any() for p in pred])

    def block(sel: np.ndarray) -> dict:
        lesion_sel, free_sel = sel & has_lesion, sel & ~has_lesion
        out = {
            "n": int(sel.sum()),
            "dice": float(per["dice"][lesion_sel].mean()) if lesion_sel.any() else None,
            # Dice pooled over all pixels of all images, lesion-free ones included
            "global_dice": global_dice((pred[i], truth[i]) for i in np.flatnonzero(sel)),
            # share of the lesion-free images (MRI: slices) with no lesion drawn
            "clean": float(1.0 - drawn[free_sel].mean()) if free_sel.any() else None,
            "iou": float(per["iou"][lesion_sel].mean()) if lesion_sel.any() else None,
            "accuracy": float((class_prob[sel].argmax(1) == labels[sel]).mean()) if sel.any() else None,
            "auc": macro_auc(class_prob[sel], labels[sel]) if sel.any() else None,
        }
        return out

    metrics = block(np.ones(len(labels), bool))
    metrics["per_modality"] = {MODALITY_NAMES[m]: block(mods == m) for m in np.unique(mods)}
    return metrics


def evaluate(
    model: AVPT,
    examples: list[Example],
    device: torch.device,
    batch_size: int = 16,
    threshold: Thresholds | None = 0.5,
) -> dict:
    lesion_prob, class_prob = predict(model, examples, device, batch_size)
    return summarize(examples, lesion_prob, class_prob, threshold)
