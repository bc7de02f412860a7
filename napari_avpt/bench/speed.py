"""Speed and memory: the model forward against a plain ViT, end to end per modality, a large volume's peak."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ..model import ModelConfig


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
    from ..engine import build_model

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
    from ..engine import build_model, load_model
    from ..engine.infer import Segmenter
    from ..io import read_path
    from ..io.nifti import write_nifti
    from ..phantoms import make_breast_mri, make_mammogram
    from ..phantoms.formats import write_mammogram_dicom

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


def volume_peak_memory(shape=(160, 512, 512), prompts=None) -> dict:
    """Peak memory of reading and segmenting one large MRI volume (NIfTI),
    measured in a fresh process so that nothing else counts (the phantom is
    made and written here, beforehand)."""
    import multiprocessing

    from ..io.nifti import write_nifti
    from ..phantoms import make_breast_mri

    with tempfile.TemporaryDirectory() as tmp:
        vol = make_breast_mri(3, label="malignant", shape=shape)
        path = Path(tmp) / "mri.nii.gz"
        write_nifti(path, vol.image, vol.spacing)
        del vol
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_segment_file, (str(path), None if prompts is None else str(prompts)))


def _segment_file(path: str, prompts: str | None) -> dict:
    from ..engine import build_model, load_model
    from ..engine.infer import Segmenter
    from ..io import read_path

    model = load_model(prompts)[0] if prompts else build_model(ModelConfig(method="avpt"))[0]
    start = time.perf_counter()
    image = read_path(path)[0]
    seg = Segmenter(model).segment_volume(image.data, "MR", axis=image.meta["acquisition_axis"])
    seg.tissue_labels()
    return {
        "shape": list(image.data.shape),
        "seconds": time.perf_counter() - start,
        "peak_memory_mb": _own_peak_mb(),
    }


def _own_peak_mb() -> float:
    """Peak resident memory of this process image. Linux's ru_maxrss keeps
    the parent's peak across fork and exec (a spawned child would report the
    memory its parent used making the phantom); VmHWM does not."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
