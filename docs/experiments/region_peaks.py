"""What a minimum peak would do (`--min-peak`, `engine/lesion_regions.py`),
estimated from one pass of a prompt set's Segmenter: every drawn region's
peak probability is recorded, and regions under each peak P are then
dropped from what was drawn (without the rule's effect on which region
the weak-region rule keeps: the Segmenter applies the peak first).

Ultrasound with masks (BUS-BRA, images + masks): mean frame Dice, the
share of lesion-free bands (`data.lesion_free_box`, each segmented as an
image of its own) left clean, and frames left empty; also the rule
"nothing drawn where the class head's p(normal) is over t". Mammograms
(mini-MIAS): masses found, false lesions per image, normals clean.

    .venv/bin/python docs/experiments/region_peaks.py ../shared/data/bus-bra/BUSBRA:folds=2
    .venv/bin/python docs/experiments/region_peaks.py ../shared/data/mini-mias/all-mias:folds=2
"""

import sys

import numpy as np

from napari_avpt.engine import load_model
from napari_avpt.engine.data import lesion_free_box, open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.datasets.mias import MASS_CLASSES, circle_mask
from napari_avpt.io.weights import default_prompts

PEAKS = (0.0, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def _regions(seg, truth=None, every=None, masses=()):
    labels, prob = seg.lesion_labels, seg.lesion_probability
    out = []
    for k in range(1, int(labels.max()) + 1):
        m = labels == k
        r = {"peak": float(prob[m].max()), "area": int(m.sum())}
        if truth is not None:
            r["inter"] = int((m & truth).sum())
        if every is not None:
            r["false"] = not every[m].any()
            r["hits"] = {i for i, c in enumerate(masses) if m[c].any()}
        out.append(r)
    return {"p_normal": seg.class_probabilities["normal"], "regions": out}


def collect(segmenter, spec: str) -> list[dict]:
    dataset, first = open_folder_spec(spec)
    rows = []
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        truth = s.lesion_target() > 0
        spacing = s.spacing if s.meta.get("spacing_known") else None
        seg = segmenter.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
        row = {"label": s.label, "truth_area": int(truth.sum()), "modality": s.modality}
        if s.modality == "MG":
            findings = s.meta["findings"]
            every = circle_mask(s.image.shape, findings, classes=("CIRC", "SPIC", "MISC", "ARCH", "ASYM", "CALC"))
            masses = [
                circle_mask(s.image.shape, [f]) for f in findings if f["class"] in MASS_CLASSES and f["x"] is not None
            ]
            row["masses"] = len(masses)
            row["frame"] = _regions(seg, None, every, masses)
        else:
            row["frame"] = _regions(seg, truth)
            box = lesion_free_box(truth)
            if box is not None:
                r0, r1, c0, c1 = box
                band = np.ascontiguousarray(s.image[r0:r1, c0:c1])
                row["band"] = _regions(segmenter.segment_image(band, s.modality, spacing=spacing))
        rows.append(row)
    return rows


def _dice(row, kept) -> float:
    inter, area = sum(r["inter"] for r in kept), sum(r["area"] for r in kept)
    return 2 * inter / (area + row["truth_area"]) if area + row["truth_area"] else 1.0


def report_ultrasound(rows: list[dict]) -> None:
    bands = [r for r in rows if "band" in r]
    print(f"{len(rows)} frames, {len(bands)} lesion-free bands")
    print("min peak  Dice    bands clean  frames empty")
    for p in PEAKS:
        kept = [[g for g in r["frame"]["regions"] if g["peak"] >= p] for r in rows]
        dice = np.mean([_dice(r, k) for r, k in zip(rows, kept)])
        clean = np.mean([not any(g["peak"] >= p for g in r["band"]["regions"]) for r in bands])
        print(f"{p:8.2f}  {dice:.4f}  {clean:11.3f}  {np.mean([not k for k in kept]):12.3f}")
    print("p(normal) over  Dice    bands clean")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        dice = np.mean([0.0 if r["frame"]["p_normal"] > t else _dice(r, r["frame"]["regions"]) for r in rows])
        clean = np.mean([r["band"]["p_normal"] > t or not r["band"]["regions"] for r in bands])
        print(f"{t:14.2f}  {dice:.4f}  {clean:11.3f}")


def report_mammograms(rows: list[dict]) -> None:
    masses, normals = sum(r["masses"] for r in rows), sum(r["label"] == "normal" for r in rows)
    print(f"{len(rows)} films, {masses} masses, {normals} normal")
    for p in PEAKS:
        found = false = clean = 0
        for r in rows:
            kept = [g for g in r["frame"]["regions"] if g["peak"] >= p]
            found += len(set().union(*(g["hits"] for g in kept))) if kept else 0
            false += sum(g["false"] for g in kept)
            clean += r["label"] == "normal" and not kept
        print(
            f"min peak {p:.2f}: masses found {found}/{masses}, false lesions per image {false / len(rows):.2f}, "
            f"normals clean {clean}/{normals}"
        )


def main(spec: str, prompts: str | None = None) -> None:
    model, meta = load_model(prompts or default_prompts())
    rows = collect(Segmenter.for_set(model, meta), spec)
    (report_mammograms if rows and rows[0]["modality"] == "MG" else report_ultrasound)(rows)


if __name__ == "__main__":
    main(*sys.argv[1:3])
