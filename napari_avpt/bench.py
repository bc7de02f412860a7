"""Measurements behind the numbers of DESIGN.md §6, as functions the
`napari-avpt bench` command prints: model speed against a plain frozen ViT,
end-to-end time for a 2D image and a 64-slice volume, and how well the
classical anatomy priors match the phantoms' true tissue maps."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .anatomy import maps_to_labels, tissue_maps
from .metrics import dice
from .model import ModelConfig


def _median_ms(fn, repeats: int) -> float:
    return _interleaved_ms({"f": fn}, repeats)["f"]


def _interleaved_ms(fns: dict, repeats: int, warmup: int = 3) -> dict:
    """Median milliseconds of each function, run in turn (so that a slow
    moment of the machine hits all of them alike), after a few warm-ups."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


@torch.no_grad()
def model_speed(repeats: int = 20, batch: int = 1, img_size: int = 224) -> dict:
    """Milliseconds per image: the plain frozen ViT forward, A-VPT's forward
    (as in training), and A-VPT with attention maps (as in inference)."""
    from .engine import build_model

    model, _ = build_model(ModelConfig(method="avpt", img_size=img_size))
    model.eval()
    vit = model.vit
    x = torch.randn(batch, 3, img_size, img_size)
    tissue = torch.rand(batch, 3, img_size, img_size)
    mod = torch.zeros(batch, dtype=torch.long)
    ms = _interleaved_ms(
        {
            "plain": lambda: vit.forward_features(x),
            "avpt": lambda: model(x, tissue, mod),
            "attention": lambda: model(x, tissue, mod, want_attention=True),
        },
        repeats,
    )
    plain, avpt, with_attention = (ms[k] / batch for k in ("plain", "avpt", "attention"))
    return {
        "batch": batch,
        "plain_vit_ms": plain,
        "avpt_ms": avpt,
        "avpt_with_attention_ms": with_attention,
        "ratio": avpt / plain,
        "ratio_with_attention": with_attention / plain,
        "threads": torch.get_num_threads(),
    }


def end_to_end(volume_slices: int = 64, prompts=None) -> dict:
    """Seconds from file to result layers: a mammogram DICOM and a 64-slice
    MRI volume (NIfTI), read, segmented (anatomy priors included) and turned
    into napari layer data; and the peak memory of the process."""
    from .engine import build_model, load_model
    from .engine.infer import Segmenter
    from .io import read_path
    from .io.nifti import write_nifti
    from .phantoms import make_breast_mri, make_mammogram
    from .phantoms.formats import write_mammogram_dicom

    model = load_model(prompts)[0] if prompts else build_model(ModelConfig(method="avpt"))[0]
    segmenter = Segmenter(model)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in (("mammogram_512", (512, 416)), ("mammogram_3000", (3000, 2500))):
            path = Path(tmp) / f"{name}.dcm"
            write_mammogram_dicom(make_mammogram(1, label="malignant", shape=shape), path, "P", name)
            segmenter.segment_image(read_path(path)[0].data, "MG")  # warm-up

            def run(path=path):
                image = read_path(path)[0]
                seg = segmenter.segment_image(image.data, "MG", window=image.window)
                return image.layer_data(), seg.lesion_labels, seg.tissue_labels(), seg.attention

            out[f"{name}_s"] = _median_ms(run, 3) / 1000
        vol = make_breast_mri(2, label="malignant", shape=(volume_slices, 192, 224))
        path = Path(tmp) / "mri.nii.gz"
        write_nifti(path, vol.image, vol.spacing)

        def run_volume():
            image = read_path(path)[0]
            seg = segmenter.segment_volume(image.data, "MR", axis=image.meta["acquisition_axis"])
            return seg.lesion_labels, seg.tissue_labels()

        start = time.perf_counter()
        run_volume()
        out[f"volume_{volume_slices}_slices_s"] = time.perf_counter() - start
    out["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def prior_dice(n: int = 8, seed: int = 20_000) -> dict:
    """Dice of the classical priors (argmax of the soft maps) against the
    phantoms' true tissue labels, per tissue and modality (MRI: the middle
    slice)."""
    from .phantoms import MAKERS

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
    from .classical import classical_lesion_mask
    from .phantoms import MAKERS

    result = {}
    for modality in modalities:
        scores = []
        for i in range(n):
            phantom = MAKERS[modality](seed + i, label=("benign", "malignant")[i % 2])
            scores.append(dice(classical_lesion_mask(phantom.image, modality), phantom.lesion > 0))
            if progress:
                progress(modality, i + 1, n)
        result[modality] = {"dice": float(np.mean(scores)), "sd": float(np.std(scores)), "n": n}
    return result
