"""Lesion Dice of a prompt set on the three napari samples (phantoms),
through the `Segmenter` at the set's thresholds and with the samples'
pixel sizes, as the Segment dock runs them; the MRI with its pre-contrast
phase (the subtraction) and without it. A check that the samples still
show what they should, not evidence about real images.

Usage: python docs/experiments/samples_dice.py [SET ...]   (default: the shipped set)"""

import sys

from napari_avpt.engine import load_model
from napari_avpt.engine.infer import Segmenter
from napari_avpt.io.weights import default_prompts
from napari_avpt.scoring.metrics import dice
from napari_avpt.widgets.samples import sample_phantom


def sample_dice(prompts) -> dict[str, float]:
    model, meta = load_model(prompts)
    segmenter = Segmenter(model, threshold=meta["thresholds"])
    mg, us, mr = (sample_phantom(m) for m in ("MG", "US", "MR"))
    out = {}
    for name, p in (("mammogram", mg), ("ultrasound", us)):
        seg = segmenter.segment_image(p.image, p.modality, spacing=p.spacing)
        out[name] = dice(seg.lesion_labels > 0, p.lesion > 0)
    for name, pre in (("MRI with pre", mr.phases["pre"]), ("MRI post alone", None)):
        seg = segmenter.segment_volume(mr.image, "MR", spacing=mr.spacing, pre=pre)
        out[name] = dice(seg.lesion_labels > 0, mr.lesion > 0)
    return out


if __name__ == "__main__":
    for prompts in sys.argv[1:] or [default_prompts()]:
        scores = sample_dice(prompts)
        print(prompts, "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
