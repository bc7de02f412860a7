"""The benchmark on real images: what a user gets from a prompt set on
held-out patients of real public datasets, and the linear-probe gate of a
backbone on them.

Scores come from whole images through the `Segmenter`, at the prompt set's
thresholds, as `segment` and the widget run them:

- images with a lesion outline (BUS-BRA, images + masks folders): lesion
  Dice and IoU per image, and the benign-vs-malignant AUC of
  p(malignant) / (p(benign) + p(malignant)) over the images of those two
  classes;
- ultrasound frames with a lesion outline also give the band beside the
  lesion (`data.lesion_free_box`), segmented as an image of its own: the
  share left clean says what lesion-free ultrasound gets, where the data
  (BUS-BRA) hold no lesion-free frame;
- mini-MIAS, whose truth is circles: the share of masses (CIRC, SPIC,
  MISC) found (a drawn lesion overlaps the circle), false lesions per image
  (drawn lesions that overlap no finding's circle, calcification clusters,
  asymmetries and distortions included), and the share of NORM images left
  clean; Dice against the circles too, for what it is worth.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from ..engine.lesion_class import malignant_share
from ..engine.progress import Progress, check_cancel
from ..scoring.metrics import dice, iou, roc_auc


def score_dataset(segmenter, dataset, progress=None, cancel=None, limit: int | None = None) -> dict:
    """Per-image scores of `segmenter` on an `io.datasets` loader of 2D
    images (its first `limit`), and their summary (`summarize_scores`)."""
    from ..engine.data import lesion_free_box
    from ..io.datasets.mias import MASS_CLASSES, circle_mask

    rows = []
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(total):
        check_cancel(cancel, f"at image {i + 1} of {total}")
        s = dataset[i]
        spacing = s.spacing if s.meta.get("spacing_known") else None
        seg = segmenter.segment_image(s.image, s.modality, window=s.meta.get("window"), spacing=spacing)
        drawn = seg.lesion_labels
        truth = s.lesion_target() > 0
        row = {
            "id": s.id,
            "label": s.label,
            "malignancy": malignant_share(seg.class_probabilities),
            "predicted": seg.predicted_class,
            "lesions_drawn": int(drawn.max()),
        }
        if s.meta.get("device"):  # BUS-BRA's scanner: the figures per scanner
            row["device"] = s.meta["device"]
        if truth.any():
            row["dice"], row["iou"] = dice(drawn > 0, truth), iou(drawn > 0, truth)
            if s.modality == "US" and (box := lesion_free_box(truth)) is not None:
                # Beside the lesion, segmented as a frame of its own: what lesion-free
                # ultrasound gets, where a dataset (BUS-BRA) has no lesion-free frame.
                r0, r1, c0, c1 = box
                band = segmenter.segment_image(np.ascontiguousarray(s.image[r0:r1, c0:c1]), "US", spacing=spacing)
                row["band_clean"] = not band.lesion_labels.any()
        findings = s.meta.get("findings")
        if findings is not None:  # circles: found / false lesions
            every = circle_mask(s.image.shape, findings, classes=("CIRC", "SPIC", "MISC", "ARCH", "ASYM", "CALC"))
            ids = np.arange(1, int(drawn.max()) + 1)
            row["false_lesions"] = int(sum(not every[drawn == k].any() for k in ids))
            masses = [f for f in findings if f["class"] in MASS_CLASSES and f["x"] is not None]
            row["masses"] = len(masses)
            row["masses_found"] = int(sum((drawn[circle_mask(s.image.shape, [f])] > 0).any() for f in masses))
        if s.label == "normal":
            row["clean"] = not drawn.any()
        rows.append(row)
        if progress is not None:
            progress(Progress("score", i + 1, total, unit="image"))
    return {"summary": summarize_scores(rows), "images": rows}


def summarize_scores(rows: list[dict]) -> dict:
    def mean(key):
        values = [r[key] for r in rows if key in r]
        return float(np.mean(values)) if values else None

    lesion = [r for r in rows if r["label"] in ("benign", "malignant")]
    auc = roc_auc([r["malignancy"] for r in lesion], [r["label"] == "malignant" for r in lesion]) if lesion else None
    out = {
        "n": len(rows),
        "with_lesion": sum("dice" in r for r in rows),
        "dice": mean("dice"),
        "dice_sd": float(np.std([r["dice"] for r in rows if "dice" in r])) if any("dice" in r for r in rows) else None,
        "iou": mean("iou"),
        "malignant_auc": auc,
        "class_accuracy": float(np.mean([r["predicted"] == r["label"] for r in rows])) if rows else None,
        "normals": sum("clean" in r for r in rows),
        "normals_clean": mean("clean"),
        "bands": sum("band_clean" in r for r in rows),
        "bands_clean": mean("band_clean"),
    }
    if any("masses" in r for r in rows):
        masses = sum(r.get("masses", 0) for r in rows)
        out["masses"] = masses
        out["masses_found"] = sum(r.get("masses_found", 0) for r in rows) / masses if masses else None
        out["false_lesions_per_image"] = mean("false_lesions")
    devices = sorted({r["device"] for r in rows if r.get("device")})
    if len(devices) > 1:  # how the figures hold across scanners (other sites' images are other scanners)
        out["by_device"] = {d: _device_summary([r for r in rows if r.get("device") == d]) for d in devices}
    return out


def _device_summary(rows: list[dict]) -> dict:
    s = summarize_scores(rows)
    return {k: s[k] for k in ("n", "dice", "iou", "malignant_auc", "bands", "bands_clean")}


def real_benchmark(prompts, specs: list[str], progress=None, device: str = "auto") -> dict:
    """`score_dataset` of the prompt set on each data spec (`[MODALITY:]PATH[:folds=..]`)."""
    from ..engine import load_model
    from ..engine.data import open_folder_spec
    from ..engine.infer import Segmenter

    model, meta = load_model(prompts)
    segmenter = Segmenter.for_set(model, meta, device)
    result = {}
    for spec in specs:
        dataset, first = open_folder_spec(spec)
        report = progress and (lambda p, spec=spec: progress(replace(p, label=spec)))
        result[spec] = score_dataset(segmenter, dataset, report, limit=first)
    return result


def real_probe_gate(backbones: dict, train_spec: str, test_spec: str, img_size: int = 224) -> dict:
    """`probe.linear_probe` of each backbone ({name: weights file or None for
    a random one}) trained on `train_spec`'s images and scored on
    `test_spec`'s (held-out patients); lesion-free crops are left out of the
    class probe (benign vs malignant only)."""
    from ..engine.backbones import create_backbone
    from ..engine.data import parse_data_spec
    from ..scoring.probe import linear_probe

    train = [e for e in parse_data_spec(train_spec, img_size, tissue="anatomy") if not e.id.endswith("#free")]
    test = [e for e in parse_data_spec(test_spec, img_size, tissue="anatomy") if not e.id.endswith("#free")]
    out = {}
    for name, weights in backbones.items():
        vit = create_backbone("vit_tiny_patch16_224", img_size, weights=weights, seed=0)
        out[name] = linear_probe(vit, train, test)
    return out


@functools.lru_cache(maxsize=4)
def _spec_examples(spec: str, size: int) -> list:
    from ..engine.data import parse_data_spec

    return parse_data_spec(spec, size, tissue="anatomy")


def real_sets(train_data: str, test_data: str, n_train: int, seed: int, size: int) -> tuple[list, list]:
    """A benchmark row's examples: `n_train` images drawn (by `seed`) from
    `train_data`'s patients, with their lesion-free crops; the whole of
    `test_data` without them (its class AUC is then benign vs malignant)."""
    pool = _spec_examples(train_data, size)
    images = sorted({e.group.removesuffix("#free") for e in pool})
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(images, size=min(n_train, len(images)), replace=False).tolist())
    train = [e for e in pool if e.group.removesuffix("#free") in chosen]
    test = [e for e in _spec_examples(test_data, size) if not e.group.endswith("#free")]
    return train, test


def compare_methods_real(
    methods,
    train_data: str,
    test_data: str,
    modality: str,
    n_train: int,
    seeds=(0, 1, 2),
    epochs: int = 10,
    backbone_weights=None,
    same_decoder: bool = False,
    progress=None,
    jobs: int = 1,
) -> list[dict]:
    """`bench.compare_methods`' rows on real data: each method trained on
    `n_train` images of `train_data` (drawn by the seed) and scored on
    every image of `test_data` (held-out patients), one frozen backbone."""
    from .methods import run_tasks

    tasks = [
        {
            "modalities": (modality,),
            "n_train": n_train,
            "n_test": None,
            "epochs": epochs,
            "img_size": 224,
            "tissue": "anatomy",
            "threads": 0,
            "same_decoder": same_decoder,
            "seed": seed,
            "backbone": "pretrained" if backbone_weights else "random",
            "weights": None if backbone_weights is None else str(backbone_weights),
            "method": method,
            "train_data": train_data,
            "test_data": test_data,
        }
        for seed in seeds
        for method in methods
    ]
    return run_tasks(tasks, jobs, progress)


class ClassicalSegmenter:
    """`classical.classical_lesion_mask` behind the `Segmenter` interface
    that `score_dataset` uses: the non-learned floor, one blob per image, no
    class (every class equally likely)."""

    def segment_image(self, image, modality, window=None, spacing=None):
        from ..engine.infer import Segmentation
        from ..model.config import CLASS_NAMES
        from ..scoring.classical import classical_lesion_mask

        labels = classical_lesion_mask(image, modality).astype(np.int32)
        flat = {c: 1 / len(CLASS_NAMES) for c in CLASS_NAMES}
        return Segmentation(labels, labels.astype(np.float32), flat, np.zeros((3, *labels.shape), np.float32))


def classical_row(spec: str) -> dict:
    """The classical floor on a held-out data spec, as a benchmark row."""
    from ..engine.data import open_folder_spec

    dataset, first = open_folder_spec(spec)
    summary = score_dataset(ClassicalSegmenter(), dataset, limit=first)["summary"]
    return {"backbone": "none", "method": "classical", "seed": None, dataset.modality: summary}


def tuning_on_real(
    init,
    train_spec: str,
    test_spec: str,
    frames=(20, 100),
    epochs: int = 20,
    seed: int = 0,
    progress=None,
    tune: str = "all",
    lr: float = 1e-2,
    score_init: bool = True,
) -> list[dict]:
    """The tuning dock's setting on real images: from the set `init`,
    everything tuned on the first N annotated images of `train_spec` with
    the dock's settings (batch 8, lr 1e-2, a fifth held out for validation
    and calibration), scored on `test_spec` as `real_benchmark` scores it.
    One row per N (and N = 0: `init` itself), with the wall time from
    reading the images to the saved set."""
    import tempfile
    import time
    from pathlib import Path

    from ..engine import backbone_meta_of, load_model
    from ..engine.data import parse_data_spec
    from ..engine.lesion_class import carried_meta
    from ..engine.train import TrainConfig, train

    def scored(prompts) -> dict:
        return real_benchmark(prompts, [test_spec])[test_spec]["summary"]

    rows = [{"frames": 0, "seconds": None, **scored(init)}] if score_init else []
    for n in frames:
        start = time.perf_counter()
        model, meta = load_model(init)
        examples = parse_data_spec(f"{train_spec}:n={n}", model.cfg.img_size, seed, "anatomy")
        cfg = TrainConfig(epochs=epochs, batch_size=8, lr=lr, val_fraction=0.2, seed=seed, tune=tune, score_start=True)
        rebuild = backbone_meta_of(meta)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "tuned.safetensors"
            extra = {**rebuild, "init": Path(init).name, **carried_meta(meta, Path(init).name)}  # as the dock does
            result = train(
                model, examples, cfg, out, meta["backbone_sha256"], extra_meta=extra, thresholds=meta["thresholds"]
            )
            seconds = time.perf_counter() - start
            run = {"frames": n, "seconds": seconds, "epochs": epochs, "tune": tune, "lr": lr}
            rows.append({**run, "best_epoch": result.best_epoch, **scored(out)})
        if progress is not None:
            progress(Progress("bench", len(rows) - 1, len(frames), unit="run", label=f"{n} images", metrics=rows[-1]))
    return rows
