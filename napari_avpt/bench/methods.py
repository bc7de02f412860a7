"""The methods compared (A-VPT, VPT, linear, full, ...) trained and scored the same way, in parallel jobs."""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

from ..engine.progress import Progress
from ..model import ModelConfig
from .phantom_scores import classical_dice


@functools.lru_cache(maxsize=2)
def phantom_set(modalities: tuple, n: int, seed: int, img_size: int, tissue: str) -> list:
    """`phantom_mix`, built once per process (every method of a seed shares it)."""
    from ..engine.data import phantom_mix

    return phantom_mix(modalities, n, seed, img_size, tissue)


def _done(row: dict, done: int, total: int) -> Progress:
    """A benchmark run's row, as progress."""
    return Progress("bench", done, total, unit="run", label=f"{row['backbone']} {row['method']}", metrics=row)


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
                    progress(_done(row, len(rows), len(tasks)))
        return rows
    for task in tasks:
        rows.append(_method_run(task))
        if progress:
            progress(_done(rows[-1], len(rows), len(tasks)))
    return rows


def _method_run(task: dict) -> dict:
    """Train and evaluate one (seed, backbone, method): one row of the
    comparison. `task["config"]`, when given, sets more ModelConfig fields
    (`docs/experiments/anatomy_variants.py`)."""
    from ..engine import build_model
    from ..engine.device import resolve_device
    from ..engine.evaluate import evaluate
    from ..engine.train import TrainConfig, train

    if task.get("threads"):
        torch.set_num_threads(task["threads"])
    modalities, seed, size, tissue = task["modalities"], task["seed"], task["img_size"], task["tissue"]
    if "train_data" in task:  # real data (`bench_real.compare_methods_real`)
        from .real import real_sets

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
    from ..model import METHODS

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
