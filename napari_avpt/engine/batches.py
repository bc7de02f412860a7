"""The batches a training run draws: each modality seen as often, split
across processes when distributed, augmented in worker processes when
asked (`TrainConfig.workers`)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, WeightedRandomSampler

from .data import Example, ExampleDataset
from .distributed import DistContext


def batch_loader(train_set: list[Example], cfg, ctx: DistContext) -> DataLoader:
    """Batches of `train_set` for a `train.TrainConfig`: split across
    processes when distributed, else drawn so that each modality is seen as
    often (`balance_modalities`)."""
    dataset = ExampleDataset(train_set, augment=cfg.augment, seed=cfg.seed + ctx.rank, strong=cfg.strong_augment)
    generator = torch.Generator().manual_seed(cfg.seed)
    mods = np.array([e.modality for e in train_set])
    if ctx.enabled:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, seed=cfg.seed)
    elif cfg.balance_modalities and len(np.unique(mods)) > 1:
        counts = np.bincount(mods)
        sampler = WeightedRandomSampler(
            torch.tensor(1.0 / counts[mods], dtype=torch.double), len(dataset), generator=generator
        )
    else:
        sampler = None
    parallel = {}
    if cfg.workers > 0:
        # Forked, so that the examples are shared rather than copied to each
        # worker; kept for the whole run, each with an augmentation stream of
        # its own (`_seed_worker`).
        fork = "fork" in multiprocessing.get_all_start_methods()
        parallel = {
            "num_workers": cfg.workers,
            "persistent_workers": True,
            "worker_init_fn": _seed_worker,
            "multiprocessing_context": "fork" if fork else None,
            "pin_memory": torch.cuda.is_available(),
        }
    return DataLoader(
        dataset,
        batch_size=min(cfg.batch_size, len(dataset)),
        sampler=sampler,
        shuffle=sampler is None,
        generator=generator if sampler is None else None,
        drop_last=len(dataset) > cfg.batch_size,
        **parallel,
    )


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng([info.dataset.seed, worker_id])
    torch.set_num_threads(1)
