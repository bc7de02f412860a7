"""Scores on phantoms with known truth: the anatomy priors, the classical baseline, a prompt set."""

from __future__ import annotations

import numpy as np

from ..engine.anatomy import maps_to_labels, tissue_maps
from ..engine.progress import Progress
from ..scoring.metrics import dice


def prior_dice(n: int = 8, seed: int = 20_000) -> dict:
    """Dice of the classical priors (argmax of the soft maps) against the
    phantoms' true tissue labels, per tissue and modality (MRI: the middle
    slice)."""
    from ..phantoms import MAKERS

    result = {}
    for modality in ("MG", "US", "MR"):
        scores = {"breast": [], "fatty": [], "glandular": [], "ductal": []}
        for i in range(n):
            ph = MAKERS[modality](seed + i)
            image, truth = ph.image, ph.tissue
            if image.ndim == 3:
                image, truth = image[image.shape[0] // 2], truth[truth.shape[0] // 2]
            labels = maps_to_labels(tissue_maps(image, modality))
            scores["breast"].append(dice(labels > 0, truth > 0))
            for name, value in (("fatty", 1), ("glandular", 2), ("ductal", 3)):
                scores[name].append(dice(labels == value, truth == value))
        result[modality] = {k: float(np.mean(v)) for k, v in scores.items()}
    return result


def classical_dice(modalities=("MG", "US", "MR"), n: int = 30, seed: int = 10_000, progress=None) -> dict:
    """Lesion Dice of the non-learned threshold+blob segmenter on held-out
    phantoms (half benign, half malignant), per modality."""
    from ..phantoms import MAKERS
    from ..scoring.classical import classical_lesion_mask

    result = {}
    for modality in modalities:
        scores = []
        for i in range(n):
            phantom = MAKERS[modality](seed + i, label=("benign", "malignant")[i % 2])
            scores.append(dice(classical_lesion_mask(phantom.image, modality), phantom.lesion > 0))
            if progress:
                progress(Progress("score", i + 1, n, unit="image", label=modality))
        result[modality] = {"dice": float(np.mean(scores)), "sd": float(np.std(scores)), "n": n}
    return result


def segmenter_dice(prompts, modalities=("MG", "US", "MR"), n: int = 30, seed: int = 90_001, progress=None) -> dict:
    """Whole held-out phantoms through the `Segmenter`, as `segment` and the
    widget run them (the prompt set's thresholds, every MRI slice): per
    modality the lesion Dice of each image or volume with a lesion (3D for a
    volume, so lesions drawn on lesion-free slices count, unlike `eval`'s
    per-slice Dice), the share of lesion-free ones with nothing drawn, and
    class accuracy. The same phantoms as `phantom_examples(modality, n,
    seed)` (`numbered_phantom`); a third as many MRI volumes (at least 3),
    scored twice: with their pre-contrast phase (the subtraction, "MR") and
    as the post-contrast volume alone ("MR post only"). The pixel size is
    known, as from a DICOM or NIfTI file, so that the smallest lesion drawn
    is the modality's default (`infer.MIN_LESION_MM`)."""
    from ..engine import load_model
    from ..engine.data import numbered_phantom
    from ..engine.infer import Segmenter

    model, meta = load_model(prompts)
    segmenter = Segmenter.for_set(model, meta)
    result = {}
    runs = [(m, m) for m in modalities if m != "MR"]
    if "MR" in modalities:
        runs += [("MR", "MR"), ("MR post only", "MR")]
    for name, modality in runs:
        count = max(n // 3, 3) if modality == "MR" else n
        scores, clean, correct = [], [], []
        for i in range(count):
            phantom = numbered_phantom(modality, seed, i)
            if phantom.image.ndim == 3:
                pre = phantom.phases["pre"] if name == "MR" else None
                seg = segmenter.segment_volume(phantom.image, modality, pre=pre, spacing=phantom.spacing)
            else:
                seg = segmenter.segment_image(phantom.image, modality, spacing=phantom.spacing)
            drawn, truth = seg.lesion_labels > 0, phantom.lesion > 0
            if truth.any():
                scores.append(dice(drawn, truth))
            else:
                clean.append(not drawn.any())
            correct.append(seg.predicted_class == phantom.label)
            if progress:
                progress(Progress("score", i + 1, count, unit="image", label=name))
        result[name] = {
            "n": count,
            "dice": float(np.mean(scores)) if scores else None,
            "sd": float(np.std(scores)) if scores else None,
            "over_0.7": int(np.sum(np.array(scores) > 0.7)),
            "with_lesion": len(scores),
            "clean": float(np.mean(clean)) if clean else None,
            "accuracy": float(np.mean(correct)),
        }
    return result
