"""The Segmenter's second, zoomed look at an ultrasound frame's strongest
lesion (`engine/zoom_look.py`, `views.lesion_view`): lesion Dice
without it and with it at each context (the view's side over the drawn
lesion's longer side), by lesion size band, on the frames of a data spec.
The prompt set's own `zoom_look` metadata is ignored: every row is forced.
Run from the repository root with the data beside it:

    .venv/bin/python docs/experiments/zoom_look.py ../shared/data/bus-bra/BUSBRA:folds=2 --ctx 2 2.5 3
    .venv/bin/python docs/experiments/zoom_look.py ../shared/data/bus-bra/BUSBRA:folds=2 --prompts SET --ctx 2.5
    (--weight W: the zoomed look's share of the mean inside its view, `zoom_look.ZOOM_WEIGHT`;
    --regions K: the first look's K strongest regions looked at again, `zoom_look.ZOOM_REGIONS`)
"""

import argparse

import numpy as np
from dice_by_size import band_means  # beside this script

from napari_avpt.engine import load_model, zoom_look
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice


def main(spec, prompts, ctxs, limit, weight, regions):
    zoom_look.ZOOM_WEIGHT, zoom_look.ZOOM_REGIONS = weight, regions
    model, meta = load_model(prompts or default_prompts())
    base = Segmenter(model, threshold=meta["thresholds"], class_shape=meta["class_shape"])
    looks = {0.0: base, **{c: Segmenter(model, threshold=meta["thresholds"], zoom_look={"US": c}) for c in ctxs}}
    dataset, first = open_folder_spec(spec)
    n = min(limit or len(dataset), first or len(dataset))
    scores = {c: [] for c in looks}
    shares = []
    for i in range(n):
        s = dataset[i]
        truth = s.lesion_target() > 0
        if not truth.any():
            continue
        shares.append(truth.mean())
        for c, segmenter in looks.items():
            scores[c].append(dice(segmenter.segment_image(s.image, "US").lesion_labels > 0, truth))
        if (i + 1) % 100 == 0:
            print(f"{i + 1} frames: " + ", ".join(f"{c:g}: {np.mean(v):.3f}" for c, v in scores.items()), flush=True)
    one = np.array(scores[0.0])
    for c, v in scores.items():
        parts = " / ".join(f"{m:.3f}" for m in band_means(np.array(v), shares))
        name = "one look" if c == 0 else f"zoomed look, context {c:g}"
        moved = "" if c == 0 else f"; frames up / down by > 0.1: {np.sum(v > one + 0.1)} / {np.sum(v < one - 0.1)}"
        print(f"{name:28s} Dice {np.mean(v):.3f} (lesions < 4.1 % / 4.1-9.3 % / > 9.3 % of the frame: {parts}){moved}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="a data spec, PATH[:folds=..][:n=..]")
    parser.add_argument("--prompts", help="a prompt set (default: the shipped one)")
    parser.add_argument("--ctx", nargs="+", type=float, default=[2.5], help="contexts of the zoomed look")
    parser.add_argument("--weight", type=float, default=0.5, help="the zoomed look's share inside its view")
    parser.add_argument("--regions", type=int, default=1, help="how many drawn regions are looked at again")
    parser.add_argument("--limit", type=int, default=0, help="the first N frames only")
    args = parser.parse_args()
    main(args.spec, args.prompts, args.ctx, args.limit, args.weight, args.regions)
