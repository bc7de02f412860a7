"""Do the default's false lesions on mammograms lie outside the breast (the
pectoral muscle, labels, the film's edge)? Scores a prompt set on mini-MIAS
as `bench --part real` does, then again keeping only the lesions whose area
lies mostly inside `engine.anatomy.breast_mask` (the pectoral muscle left
out), and prints both summaries.

The Segmenter has applied the rule itself (at 50 %) since this was
measured: run it at the commit before (`git log -- napari_avpt/engine/infer.py`)
to see the difference again.

Usage: python docs/experiments/breast_only_mias.py SPEC [SHARE]
(e.g. ../shared/data/mini-mias/all-mias:folds=2 0.5)"""

import sys

import numpy as np
from skimage.measure import label as connected_components

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.anatomy import breast_mask
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.work_grid import downsample, upsample
from napari_avpt.io.weights import default_prompts


class BreastOnly:
    """A Segmenter whose mammogram lesions must lie mostly inside the breast."""

    def __init__(self, segmenter, share: float):
        self.segmenter, self.share = segmenter, share

    def segment_image(self, image, modality, **kw):
        seg = self.segmenter.segment_image(image, modality, **kw)
        if modality != "MG" or not seg.lesion_labels.any():
            return seg
        work, factor = downsample(np.asarray(image), 640)
        inside = upsample(breast_mask(work, "MG").astype(np.float32), image.shape, factor) > 0.5
        labels = seg.lesion_labels
        keep = np.zeros_like(labels)
        for k in range(1, int(labels.max()) + 1):
            region = labels == k
            if inside[region].mean() >= self.share:
                keep[region] = 1
        seg.lesion_labels = connected_components(keep).astype(np.int32)
        return seg


spec, share = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
model, meta = load_model(default_prompts())
plain = Segmenter(model, threshold=meta["thresholds"])
dataset, first = open_folder_spec(spec)
for name, seg in (("as shipped", plain), (f"breast only ({share:.0%})", BreastOnly(plain, share))):
    m = score_dataset(seg, dataset, limit=first)["summary"]
    print(
        f"{name}: masses found {m['masses_found']:.3f} of {m['masses']}, false lesions per image "
        f"{m['false_lesions_per_image']:.2f}, normals clean {m['normals_clean']:.3f} of {m['normals']}, "
        f"Dice {m['dice']:.3f}"
    )
