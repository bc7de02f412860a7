"""Measurements behind the numbers of DESIGN.md §6, as functions the
`napari-avpt bench` command prints: model speed against a plain frozen ViT,
end-to-end time for a 2D image and a 64-slice volume, and how well the
classical anatomy priors match the phantoms' true tissue maps."""

from __future__ import annotations

import functools
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


def volume_peak_memory(shape=(160, 512, 512), prompts=None) -> dict:
    """Peak memory of reading and segmenting one large MRI volume (NIfTI),
    measured in a fresh process so that nothing else counts (the phantom is
    made and written here, beforehand)."""
    import multiprocessing

    from .io.nifti import write_nifti
    from .phantoms import make_breast_mri

    with tempfile.TemporaryDirectory() as tmp:
        vol = make_breast_mri(3, label="malignant", shape=shape)
        path = Path(tmp) / "mri.nii.gz"
        write_nifti(path, vol.image, vol.spacing)
        del vol
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_segment_file, (str(path), None if prompts is None else str(prompts)))


def _segment_file(path: str, prompts: str | None) -> dict:
    from .engine import build_model, load_model
    from .engine.infer import Segmenter
    from .io import read_path

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
    from .engine import load_model
    from .engine.data import numbered_phantom
    from .engine.infer import Segmenter

    model, meta = load_model(prompts)
    segmenter = Segmenter(model, threshold=meta["thresholds"])
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
                progress(name, i + 1, count)
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


@functools.lru_cache(maxsize=2)
def phantom_set(modalities: tuple, n: int, seed: int, img_size: int, tissue: str) -> list:
    """`phantom_mix`, built once per process (every method of a seed shares it)."""
    from .engine.data import phantom_mix

    return phantom_mix(modalities, n, seed, img_size, tissue)


def run_tasks(tasks: list[dict], jobs: int = 1, progress=None) -> list[dict]:
    """`_method_run` of each task, in order; `jobs` > 1: that many
    single-threaded processes side by side."""
    rows = []
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        tasks = [{**t, "threads": 1} for t in tasks]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for row in pool.map(_method_run, tasks):
                rows.append(row)
                if progress:
                    progress(row)
        return rows
    for task in tasks:
        rows.append(_method_run(task))
        if progress:
            progress(rows[-1])
    return rows


def _method_run(task: dict) -> dict:
    """Train and evaluate one (seed, backbone, method): one row of the
    comparison. `task["config"]`, when given, sets more ModelConfig fields
    (`docs/experiments/anatomy_variants.py`)."""
    from .engine import build_model
    from .engine.device import resolve_device
    from .engine.evaluate import evaluate
    from .engine.train import TrainConfig, train

    if task.get("threads"):
        torch.set_num_threads(task["threads"])
    modalities, seed, size, tissue = task["modalities"], task["seed"], task["img_size"], task["tissue"]
    if "train_data" in task:  # real data (`bench_real.compare_methods_real`)
        from .bench_real import real_sets

        train_set, test_set = real_sets(task["train_data"], task["test_data"], task["n_train"], seed, size)
    else:
        train_set = phantom_set(modalities, task["n_train"], 1000 * (seed + 1), size, tissue)
        test_set = phantom_set(modalities, task["n_test"], 90_001, size, tissue)
    cfg = ModelConfig(
        method=task["method"],
        img_size=size,
        baseline_modality_decoder=task["same_decoder"],
        **task.get("config", {}),
    )
    model, sha = build_model(cfg, task["weights"], seed=seed)
    trainable, total = model.parameter_counts()
    epochs = task["epochs"]
    start = time.perf_counter()
    result = train(model, train_set, TrainConfig(epochs=epochs, batch_size=8, seed=seed, patience=epochs), None, sha)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, test_set, resolve_device("auto"), threshold=result.final_thresholds)
    return {
        "backbone": task["backbone"],
        "method": task["method"],
        "seed": seed,
        "trainable": trainable,
        "total": total,
        "share": trainable / total,
        "train_seconds": seconds,
        "best_epoch": result.best_epoch,
        "all": {k: metrics[k] for k in ("dice", "iou", "auc", "accuracy")},
        **{m: metrics["per_modality"].get(m, {}) for m in modalities},
    }


def compare_methods(
    methods=None,
    modalities=("MG", "US", "MR"),
    seeds=(0, 1, 2),
    n_train: int = 30,
    n_test: int = 15,
    epochs: int = 12,
    img_size: int = 224,
    backbone_weights=None,
    include_random_backbone: bool = True,
    random_methods=None,
    tissue: str = "anatomy",
    jobs: int = 1,
    progress=None,
    same_decoder: bool = False,
) -> list[dict]:
    """Every method on the same data, backbone, epochs and seeds.

    Training phantoms use seeds 1000 * (seed + 1) and up; the held-out test
    sets use seed 90_001, never used in training. Tissue maps are the
    classical priors (`tissue="anatomy"`), as on a user's image, unless
    `tissue="truth"`. Each row: backbone ("pretrained" or "random"),
    method, seed, per-modality metrics, trainable parameters, training
    seconds. `random_methods` limits which methods also run on the random
    backbone (default: all). `jobs` > 1 runs that many single-threaded
    processes side by side (faster than one process with as many threads on
    a small CPU). `same_decoder`: the baselines get A-VPT's
    modality-conditioned lesion decoder too, drawn the same for a seed, so
    that only the prompts differ. The classical threshold+blob segmenter is
    added as its own row.
    """
    from .model import METHODS

    methods = list(methods or METHODS)
    backbones = [("pretrained", backbone_weights, methods)] if backbone_weights is not None else []
    if include_random_backbone or backbone_weights is None:
        backbones.append(("random", None, list(methods if random_methods is None else random_methods)))
    base = {
        "modalities": tuple(modalities),
        "n_train": n_train,
        "n_test": n_test,
        "epochs": epochs,
        "img_size": img_size,
        "tissue": tissue,
        "threads": 1 if jobs > 1 else 0,
        "same_decoder": same_decoder,
    }
    tasks = [
        {**base, "seed": seed, "backbone": name, "weights": None if weights is None else str(weights), "method": m}
        for seed in seeds
        for name, weights, names in backbones
        for m in names
    ]
    rows = run_tasks(tasks, jobs, progress)
    classical = classical_dice(modalities, n=n_test, seed=90_001)
    rows.append({"backbone": "none", "method": "classical", "seed": None, **{m: classical[m] for m in modalities}})
    return rows


def summarize_methods(rows: list[dict], modalities=("MG", "US", "MR")) -> list[dict]:
    """Mean and sd over seeds, per backbone and method."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["backbone"], row["method"]), []).append(row)
    table = []
    for (backbone, method), group in groups.items():
        entry = {"backbone": backbone, "method": method, "n_seeds": len(group)}
        if "share" in group[0]:
            entry["share"] = group[0]["share"]
            entry["trainable"] = group[0]["trainable"]
            entry["train_seconds"] = float(np.mean([g["train_seconds"] for g in group]))
        for m in (*modalities, "all"):
            for key in ("dice", "iou", "auc", "accuracy"):
                values = [g[m].get(key) for g in group if g.get(m) and g[m].get(key) is not None]
                entry[f"{m}_{key}"] = (float(np.mean(values)), float(np.std(values))) if values else None
        table.append(entry)
    return table


def methods_markdown(table: list[dict], modalities=("MG", "US", "MR"), header: str = "") -> str:
    def cell(v, runs=2):
        if v is None:
            return "–"
        return f"{v[0]:.3f} ± {v[1]:.3f}" if runs > 1 else f"{v[0]:.3f}"

    modalities = [m for m in modalities if any(e.get(f"{m}_dice") or e.get(f"{m}_auc") for e in table)]
    cols = [f"{m} Dice" for m in modalities] + [f"{m} AUC" for m in modalities]
    cols += ["IoU (all)", "accuracy (all)", "train s"]
    lines = [header, ""] if header else []
    lines.append("| backbone | method | trainable | " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * (3 + len(cols)))
    for e in table:
        share = f"{e['trainable']:,} ({100 * e['share']:.2f} %)" if "share" in e else "–"
        runs = e.get("n_seeds", 2)  # one run (the classical row): no spread to show
        values = [cell(e.get(f"{m}_dice"), runs) for m in modalities]
        values += [cell(e.get(f"{m}_auc"), runs) for m in modalities]
        values += [cell(e.get("all_iou"), runs), cell(e.get("all_accuracy"), runs)]
        values.append(f"{e['train_seconds']:.0f}" if "train_seconds" in e else "–")
        lines.append(f"| {e['backbone']} | {e['method']} | {share} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def probe_markdown(result: dict) -> str:
    """The linear-probe gate as a table: backbone x (modality, metric)."""
    groups = list(next(iter(result.values())))
    cols = [f"{g} lesion-patch AUC" for g in groups] + [f"{g} class AUC" for g in groups]
    lines = ["| backbone | " + " | ".join(cols) + " |", "|" + "---|" * (1 + len(cols))]
    for name, r in result.items():
        vals = [r[g]["lesion_patch_auc"] for g in groups] + [r[g]["class_auc"] for g in groups]
        lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(report: dict, header: str, plot_name: str | None = None) -> str:
    """docs/benchmarks.md from the parts of `napari-avpt bench` that ran."""
    out = ["# Benchmark: A-VPT and its peers on phantoms", "", header, ""]
    if "probe" in report:
        out += [
            "## Gate: linear probes on the frozen backbone",
            "",
            "Logistic regression on frozen features only (no decoder, no pixel skip): "
            "per 16-px patch, lesion or not; per image, the class from the mean token. "
            f"Sizes: {report['probe']['sizes']}.",
            "",
            probe_markdown(report["probe"]["result"]),
        ]
    if "methods" in report:
        m = report["methods"]
        out += [
            "## Methods on the same data, backbone, epochs and seeds",
            "",
            f"Mean ± sd over seeds. Sizes: {m['sizes']}. Held-out test phantoms (seed 90001); "
            "tissue maps from the classical priors, as on a user's image. Dice is over test images "
            "with a lesion; AUC is macro one-vs-rest over normal / benign / malignant.",
            "",
            methods_markdown(m["table"]),
        ]
        if plot_name:
            out += [f"![lesion Dice per method]({plot_name})", ""]
        if "speed" not in report:
            out += [
                "Timings (model forward against the plain frozen ViT, file to layers, the napari UI) are "
                "measured on an idle machine by `napari-avpt bench --part speed e2e ui --report "
                "docs/benchmarks-speed.md`.",
                "",
            ]
    if "fewshot" in report:
        out += [
            "## Few-shot: 20 annotated images of one modality (2 MRI volumes)",
            "",
            f"Each modality trained and tested on its own. Sizes: {report['fewshot']['sizes']}.",
            "",
            methods_markdown(report["fewshot"]["table"]),
        ]
    if "speed" in report:
        out += [
            "## Speed (CPU)",
            "",
            "| batch | plain frozen ViT ms/image | A-VPT ms/image | ratio | with attention maps |",
            "|---|---|---|---|---|",
        ]
        for r in report["speed"]:
            out.append(
                f"| {r['batch']} | {r['plain_vit_ms']:.1f} | {r['avpt_ms']:.1f} | {r['ratio']:.2f} | "
                f"{r['avpt_with_attention_ms']:.1f} |"
            )
        out.append("")
    if "end_to_end" in report:
        r = report["end_to_end"]
        out += [
            "## End to end (file -> result layers, CPU)",
            "",
            f"Mammogram 512x416 {r['mammogram_512_s']:.2f} s; 3000x2500 {r['mammogram_3000_s']:.2f} s; "
            f"64-slice MRI {r['volume_64_slices_s']:.1f} s; peak memory {r['peak_memory_mb']:.0f} MB.",
            "",
        ]
        big = r.get("big_volume")
        if big:
            out += [
                f"A {'x'.join(map(str, big['shape']))} MRI volume (NIfTI) read and segmented in a fresh process: "
                f"{big['seconds']:.1f} s, peak memory {big['peak_memory_mb']:.0f} MB.",
                "",
            ]
    if "ui" in report:
        out += [
            "## napari UI (Segment lesion, default weights)",
            "",
            "| sample | first click to layers s | later clicks s | longest UI stall ms: first run | later run |",
            "|---|---:|---:|---:|---:|",
        ]
        for sample, r in report["ui"].items():
            first = r.get("first_click_s")
            first = "–" if first is None else f"{first:.2f}"
            stalls = [r.get("first_stall_ms", r["longest_ui_stall_ms"]), r.get("later_stall_ms")]
            stalls = " | ".join("–" if v is None else f"{v:.0f}" for v in stalls)
            out.append(f"| {sample} | {first} | {r['click_to_layers_s']:.2f} | {stalls} |")
        out.append("")
    return "\n".join(out)


def methods_plot(table: list[dict], path, modalities=("MG", "US", "MR")) -> None:
    """Bar chart of lesion Dice per method and modality (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .files import atomic_file

    labels = [f"{e['method']}\n({e['backbone']})" for e in table]
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6, len(table) * 0.9), 3.5), tight_layout=True)
    width = 0.8 / len(modalities)
    for i, m in enumerate(modalities):
        means = [(e.get(f"{m}_dice") or (np.nan, 0))[0] for e in table]
        sds = [(e.get(f"{m}_dice") or (0, 0))[1] for e in table]
        ax.bar(x + i * width, means, width, yerr=sds, label=m)
    ax.set_xticks(x + width * (len(modalities) - 1) / 2, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("lesion Dice")
    ax.set_ylim(0, 1)
    ax.legend()
    with atomic_file(path) as handle:
        fig.savefig(handle, dpi=110, format="png")
    plt.close(fig)


def ui_responsiveness(prompts, samples=("mammogram", "ultrasound", "mri"), settle_s: float = 2.0) -> dict:
    """Per sample, as a user meets the Segment widget: the first click's
    seconds to layers (`settle_s` after the dock opens, the time a user
    takes to choose the image: the model loads in the background
    meanwhile), a second click's, and the longest time napari's event loop
    went without running during each (a 10 ms timer). Needs a display."""
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from .widgets.segment import SegmentWidget

    def click(widget):
        ticks = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(10)
        start = time.perf_counter()
        widget.run_button.clicked()
        while widget.worker is not None or widget._steps:
            QApplication.processEvents()
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        timer.stop()
        gaps = np.diff([start, *ticks, time.perf_counter()]) * 1000
        return seconds, float(gaps.max())

    out = {}
    for sample in samples:
        viewer = napari.Viewer(show=True)
        layers = viewer.open_sample("napari-avpt", sample)
        widget = SegmentWidget(viewer)
        widget.add_prompt_file(prompts)
        viewer.window.add_dock_widget(widget)
        widget.reset_choices()
        widget.image.value = next(lay for lay in layers if lay._type_string == "image" and lay.visible)
        settle = time.perf_counter() + settle_s
        while time.perf_counter() < settle:
            QApplication.processEvents()
            time.sleep(0.01)
        first, first_stall = click(widget)
        again, again_stall = click(widget)
        out[sample] = {
            "first_click_s": first,
            "click_to_layers_s": again,
            "longest_ui_stall_ms": max(first_stall, again_stall),
            "first_stall_ms": first_stall,  # the result layers added
            "later_stall_ms": again_stall,  # updated in place
        }
        viewer.close()
    return out
