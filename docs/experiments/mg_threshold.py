"""How the mammogram lesion threshold trades masses found against false
lesions: scores a prompt set on mini-MIAS images as `bench --part real`
does (whole images through the `Segmenter`), once per threshold, and
prints masses found, false lesions per image and normals left clean.

The set's own calibrated threshold maximises the global Dice on its
validation images; a detection tool is usually run at a false-lesion
budget instead (an FROC operating point). This shows what each budget
costs.

Usage: python docs/experiments/mg_threshold.py SET SPEC T1 T2 ...
(e.g. weights/avpt_default.safetensors ../shared/data/mini-mias/all-mias:folds=2 0.3 0.4 0.5)"""

import sys

from napari_avpt.bench.real import score_dataset
from napari_avpt.engine import load_model
from napari_avpt.engine.data import open_folder_spec
from napari_avpt.engine.infer import Segmenter


def main(prompts: str, spec: str, thresholds: list[float]) -> None:
    model, meta = load_model(prompts)
    segmenter = Segmenter(model, threshold=meta["thresholds"])
    dataset, first = open_folder_spec(spec)
    print(f"calibrated thresholds: {meta['thresholds']}")
    print("threshold  masses found  false lesions/image  normals clean  Dice(circles)")
    for t in thresholds:
        summary = score_dataset(segmenter.with_options(threshold=t), dataset, limit=first)["summary"]
        print(
            f"{t:9.2f}  {summary['masses_found']:12.2f}  {summary['false_lesions_per_image']:19.2f}"
            f"  {summary['normals_clean']:13.2f}  {summary['dice'] or 0:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [float(v) for v in sys.argv[3:]])
