"""Lesion Dice by lesion size (the lesion's share of the frame) and by
scanner, from a `bench --part real --json R.json` run, which keeps its
per-image rows (strip them before committing a run). The size bands are
fixed at the tertiles of BUS-BRA's held-out fold 1 (4.1 % and 9.3 %), so
that runs on other frames or other models compare band by band.

    .venv/bin/python docs/experiments/dice_by_size.py R.json ../shared/data/bus-bra/BUSBRA:folds=1
"""

import json
import sys

import numpy as np

from napari_avpt.engine.data import open_folder_spec

SIZE_BANDS = (0.041, 0.093)  # lesion share of the frame: below, between, above


def band_means(scores, shares) -> list[float]:
    """Mean of `scores` in each size band of `shares` (nan for an empty band)."""
    scores, band = np.asarray(scores, float), np.digitize(shares, SIZE_BANDS)
    return [float(scores[band == k].mean()) if (band == k).any() else float("nan") for k in range(3)]


def lesion_shares(spec: str) -> dict[str, float]:
    """{image id: lesion share of the frame} of a data spec's images with a lesion."""
    dataset, first = open_folder_spec(spec)
    out = {}
    for i in range(len(dataset) if first is None else first):
        s = dataset[i]
        target = s.lesion_target() > 0
        if target.any():
            out[s.id] = float(target.mean())
    return out


def main(run_path: str, spec: str) -> None:
    runs = json.loads(open(run_path).read())["real"]
    rows = [r for r in runs[spec]["images"] if "dice" in r]
    shares = lesion_shares(spec)
    share = [shares[r["id"]] for r in rows]
    dice = [r["dice"] for r in rows]
    bands = "  ".join(f"{m:.3f}" for m in band_means(dice, share))
    print(f"all {len(rows)}: Dice {np.mean(dice):.3f}; by size band (< 4.1 %, 4.1-9.3 %, > 9.3 %): {bands}")
    for device in sorted({r.get("device", "") for r in rows}):
        sel = [i for i, r in enumerate(rows) if r.get("device", "") == device]
        parts = band_means([dice[i] for i in sel], [share[i] for i in sel])
        median = np.median([share[i] for i in sel])
        print(
            f"{device or '?'}: {len(sel)} frames, median lesion share {median:.3f}, Dice by band "
            + "  ".join(f"{m:.3f}" for m in parts)
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
