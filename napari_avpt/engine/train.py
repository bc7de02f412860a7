"""One trainer for A-VPT, its ablations and every baseline.

It takes prepared examples (phantoms, dataset folders or the user's painted
layers), a `progress` callback and a `cancel` check, and leaves behind: the
best checkpoint (by validation Dice), the final one kept apart, and a
per-epoch stats JSON. It checks `cancel` at every step, stops on a NaN/Inf
loss keeping the last good prompts, and runs unchanged under `torchrun`
(DistributedDataParallel; gloo on CPUs, NCCL on GPUs).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import AvptError
from ..io.files import write_text_atomic
from ..model import AVPT
from ..model.config import MODALITY_INDEX, TUNE, TUNE_PREFIXES
from ..model.losses import attention_prior_loss, classification_loss, cross_modal_supcon, segmentation_loss
from .batches import batch_loader
from .checkpoints import save_prompt_set, zoom_look_taught
from .data import Example
from .device import autocast, resolve_device
from .distributed import DistContext, init_distributed
from .evaluate import MODALITY_NAMES, calibrate_thresholds, predict, summarize
from .progress import CancelFn, Cancelled, Progress, ProgressFn
from .schedule import WarmupCosine, epochs_that_fit


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-2  # prompts and heads
    lr_full: float = 1e-4  # the whole backbone, for full fine-tuning
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    patience: int = 10  # epochs without a better validation score before stopping
    seed: int = 0
    lambda_supcon: float = 0.1
    lambda_attention: float = 0.1
    lambda_negative: float = 0.0  # false lesions on lesion-free images (`segmentation_loss`)
    device: str = "auto"
    augment: bool = True
    # Zoom, rotation, shift, blur, noise and resolution too (`ExampleDataset`):
    # for real images from many scanners and sites.
    strong_augment: bool = False
    balance_modalities: bool = True
    # "all": everything the method trains; "heads": the lesion decoder and
    # the class head on the prompts as they are (the ViT runs without a
    # backward pass, so an epoch costs about a third); "class-head": the
    # class head only, the prompts and the lesion decoder stay as they are
    # (what is drawn does not change, so the lesion thresholds stay valid).
    tune: str = "all"
    # The modalities whose validation Dice chooses the epoch (MG, US, MR);
    # empty: all of those in the validation set. A recipe whose only MRI is a
    # few phantom volumes names the real modalities here, so that four
    # phantoms do not weigh a third of the choice.
    choose_on: tuple[str, ...] = ()
    # Processes that augment the batches (DataLoader workers): 0 augments in
    # this one, which is enough on a CPU; a GPU waits for one alone.
    workers: int = 0
    # A time budget (minutes, the preparation of examples aside): the number
    # of epochs becomes what fits, from the time the first two took, at most
    # `epochs`, and the learning-rate schedule is stretched or shrunk to it;
    # a later epoch that would run past the budget is not started.
    minutes: float | None = None
    # Score the starting prompts on the validation images before the first
    # epoch, as a candidate for the best: tuning a good set on a few images
    # then never hands back one that does worse there than the set it started
    # from (the dock and `train --init` do; a new set has nothing to keep).
    score_start: bool = False


@dataclass
class TrainResult:
    status: str  # finished, early-stopped, cancelled, diverged
    message: str
    best_epoch: int
    best_metrics: dict
    history: list[dict] = field(default_factory=list)
    best_path: Path | None = None
    final_path: Path | None = None
    seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)  # lesion threshold per modality, of the best epoch
    final_thresholds: dict[str, float] = field(default_factory=dict)  # of the prompts the model holds at the end


def split_examples(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Train/validation split by source image or volume (its views and
    slices stay on one side), `fraction` of each modality's sources held
    out (a joint run's validation would otherwise get, by chance, 5 of 60
    mammograms); the validation set is never empty when there are at least
    two sources (and never the whole set)."""
    sources = list(dict.fromkeys(e.source or e.id for e in examples))
    if len(sources) < 2:
        return list(examples), []
    modality = {e.source or e.id: e.modality for e in examples}
    rng = np.random.default_rng(seed)
    val: set[str] = set()
    for m in sorted(set(modality.values())):
        group = [s for s in sources if modality[s] == m]
        order = rng.permutation(len(group))
        val |= {group[i] for i in order[: int(round(fraction * len(group)))]}
    if not val:  # too few sources for the fraction: hold out one
        val = {sources[int(rng.integers(len(sources)))]}
    if len(val) == len(sources):
        val.discard(sources[0])
    return [e for e in examples if (e.source or e.id) not in val], [e for e in examples if (e.source or e.id) in val]


def _score(metrics: dict, choose_on: tuple[str, ...] = ()) -> float:
    """Validation score: per modality the lesion Dice pooled over all its
    images (`global_dice`: lesions drawn on lesion-free slices count, drawing
    nothing scores 0), averaged over the modalities (so the modality with the
    most validation images does not choose the epoch for the others), or over
    those of `choose_on` alone; ties broken by class accuracy (of the same
    modalities)."""
    blocks = metrics.get("per_modality") or {}
    accuracy = metrics.get("accuracy") or 0.0
    if choose_on:
        blocks = {m: block for m, block in blocks.items() if m in choose_on}
        accuracies = [b["accuracy"] for b in blocks.values() if b.get("accuracy") is not None]
        accuracy = float(np.mean(accuracies)) if accuracies else 0.0
    per = [b.get("global_dice") for b in blocks.values()]
    per = [v for v in per if v is not None] or [metrics.get("global_dice") or 0.0]
    return float(np.mean(per)) + 0.1 * accuracy


def _check_choose_on(choose_on: tuple[str, ...], val_set: list[Example]) -> None:
    """Refuse, before the first epoch, a `choose_on` that names an unknown
    modality or one the validation set does not have."""
    unknown = [m for m in choose_on if m not in MODALITY_INDEX]
    if unknown:
        raise AvptError(f"unknown modality {', '.join(unknown)} to choose the epoch on: use MG, US or MR")
    present = {MODALITY_NAMES[e.modality] for e in val_set}
    if choose_on and not present & set(choose_on):
        raise AvptError(
            f"the validation set has no {' or '.join(choose_on)} images to choose the epoch on "
            f"(it has {', '.join(sorted(present)) or 'none'})"
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _class_weights(examples: list[Example]) -> torch.Tensor:
    counts = np.bincount([e.label for e in examples], minlength=3).astype(float)
    weights = np.where(counts > 0, counts.sum() / (3 * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def parameter_groups(model: AVPT, cfg: TrainConfig) -> list[dict]:
    """What the optimizer updates, at which rate: prompts and heads at
    `lr`; under full fine-tuning the pretrained backbone at `lr_full`, its
    freshly initialised heads still at `lr` (at the backbone's small rate the
    heads barely leave their initialisation in a few hundred steps, and full
    fine-tuning drew no lesion at all)."""
    backbone = {id(p) for p in model.vit.parameters()}
    heads = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone]
    groups = [{"params": heads, "lr": cfg.lr}] if heads else []
    tuned = [p for p in model.vit.parameters() if p.requires_grad]
    if tuned:
        groups.append({"params": tuned, "lr": cfg.lr_full if model.cfg.method == "full" else cfg.lr})
    return groups


def _finite(value):
    """NaN and infinities (a diverged loss) as null: they are not JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def final_path_for(best_path: Path) -> Path:
    return best_path.with_name(best_path.name.replace(".safetensors", "") + ".final.safetensors")


def stats_path_for(best_path: Path) -> Path:
    return best_path.with_name(best_path.name.replace(".safetensors", "") + ".stats.json")


def tuned_parameter_count(model: AVPT, tune: str = "all") -> int:
    """How many parameters a run with `TrainConfig.tune` updates."""
    if tune in TUNE_PREFIXES:
        keep = TUNE_PREFIXES[tune]
        return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith(keep))
    return model.parameter_counts()[0]


@contextmanager
def _tuning(model: AVPT, tune: str):
    """For the run's length, freeze what `tune` leaves as it is (with
    "heads": the prompts; with "class-head": everything but the class head);
    yields whether only the class head trains. Whatever was trainable is
    trainable again after."""
    if tune not in TUNE:
        raise AvptError(f"unknown tune {tune!r}; choose from {', '.join(TUNE)}")
    frozen = []
    if tune in TUNE_PREFIXES:
        keep = TUNE_PREFIXES[tune]
        frozen = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(keep)]
    try:
        for p in frozen:
            p.requires_grad = False
        yield tune == "class-head"
    finally:
        for p in frozen:
            p.requires_grad = True


def _state(model: AVPT) -> dict:
    """A copy of the model's state to go back to (the best epoch's)."""
    return copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})


def _validate(model, val_set, device, starting, fixed) -> tuple[dict, dict]:
    """Validation metrics and the lesion thresholds calibrated on them
    (the starting set's where none are fitted)."""
    lesion_prob, class_prob = predict(model, val_set, device)
    thresholds = dict(starting or {})
    if not fixed:
        thresholds.update(calibrate_thresholds(val_set, lesion_prob))
    return summarize(val_set, lesion_prob, class_prob), thresholds


class _Objective:
    """The training loss of one batch: lesion (Dice + BCE, + the charge
    for false lesions), class, and for A-VPT the cross-modal contrast of
    the tissue embeddings and the attention prior."""

    def __init__(self, model: AVPT, cfg: TrainConfig, class_weights: torch.Tensor):
        self.cfg, self.class_weights = cfg, class_weights
        self.want_attention = model.cfg.uses_anatomy and cfg.lambda_attention > 0
        self.use_supcon = model.cfg.uses_supcon and cfg.lambda_supcon > 0

    def __call__(self, runner, batch: dict, device) -> torch.Tensor:
        cfg = self.cfg
        images = batch["image"].to(device)
        tissue, lesion = batch["tissue"].to(device), batch["lesion"].to(device)
        labels, modality = batch["label"].to(device), batch["modality"].to(device)
        with autocast(device):
            output = runner(images, tissue, modality, want_attention=self.want_attention)
        loss = segmentation_loss(output.lesion_logits.float(), lesion, cfg.lambda_negative)
        loss = loss + classification_loss(output.class_logits.float(), labels, self.class_weights)
        present = output.tissue_on_grid.sum(-1) > 1e-3 if output.tissue_on_grid is not None else None
        if self.use_supcon:
            loss = loss + cfg.lambda_supcon * cross_modal_supcon(output.tissue_embeddings.float(), modality, present)
        if self.want_attention:
            loss = loss + cfg.lambda_attention * attention_prior_loss(
                output.tissue_attention.float(), output.tissue_on_grid.float(), present
            )
        return loss


def train(
    model: AVPT,
    examples: list[Example],
    cfg: TrainConfig,
    out: str | Path | None = None,
    backbone_sha256: str = "",
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    val_examples: list[Example] | None = None,
    extra_meta: dict | None = None,
    thresholds: dict | None = None,
) -> TrainResult:
    """Train the trainable part of `model` (`cfg.tune`: all of it, or its
    class head alone) on `examples`.

    `progress` receives a `Progress` after every step (unit "step", done of
    the epoch's steps, with its loss) and at every epoch's end (unit
    "epoch", with the mean training loss, the validation metrics and
    whether it is the best so far). `cancel()` returning True stops within
    one step: the best prompts so far stay saved, and `Cancelled` is raised
    with the run's `TrainResult` (status "cancelled").

    `thresholds` are the starting set's calibrated lesion thresholds. With
    the class head alone the lesions drawn do not change, so they are kept
    rather than re-fitted on this run's few validation images; otherwise
    those of modalities the validation images lack are kept (a set tuned on
    ultrasound keeps its mammogram threshold)."""
    with _tuning(model, cfg.tune) as head_only:
        return _train(
            model,
            examples,
            cfg,
            out,
            backbone_sha256,
            progress,
            cancel,
            val_examples,
            extra_meta,
            thresholds,
            head_only,
        )


def _train(
    model, examples, cfg, out, backbone_sha256, progress, cancel, val_examples, extra_meta, starting, fixed
) -> TrainResult:
    """`train` with its trainable parameters chosen; `starting`: the
    starting set's lesion thresholds, kept as they are when `fixed`, else
    where this run calibrates none."""
    if not examples:
        raise AvptError("no training examples")
    start = time.perf_counter()
    _seed_everything(cfg.seed)
    ctx: DistContext = init_distributed(cfg.device)
    device = ctx.device if ctx.enabled else resolve_device(cfg.device)
    if val_examples is None:
        train_set, val_set = split_examples(examples, cfg.val_fraction, cfg.seed)
    else:
        train_set, val_set = list(examples), list(val_examples)
    _check_choose_on(cfg.choose_on, val_set)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise AvptError("the model has nothing to train")
    runner = ctx.wrap(model)
    loader = batch_loader(train_set, cfg, ctx)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), weight_decay=cfg.weight_decay)
    schedule = WarmupCosine(max(cfg.epochs * len(loader), 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    objective = _Objective(model, cfg, _class_weights(train_set).to(device))

    best_path = Path(out) if out is not None else None
    history: list[dict] = []
    best_score, best_epoch, best_metrics = -math.inf, 0, {}
    best_thresholds: dict[str, float] = {}
    last_thresholds: dict[str, float] = {}  # of the last evaluated epoch, kept with the final prompts
    best_state = _state(model)
    status, message = "finished", f"trained {cfg.epochs} epochs"
    if cfg.score_start and val_set:
        best_metrics, calibrated = _validate(model, val_set, device, starting, fixed)
        best_score = _score(best_metrics, cfg.choose_on)
        # Kept, the start is the set as it was: its own thresholds (calibrated
        # on its own, usually many more, validation images) where it has them.
        best_thresholds = {**calibrated, **(starting or {})}
    stale = 0
    stopped = False
    meta = {"train_config": asdict(cfg), **(extra_meta or {})}
    zoomed = zoom_look_taught(meta.get("zoom_look"), train_set)
    if zoomed:
        meta["zoom_look"] = json.dumps(zoomed)

    epochs, looped = cfg.epochs, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        if epoch > epochs:
            break
        if ctx.enabled:
            loader.sampler.set_epoch(epoch)
        runner.train()
        losses = []
        for step, batch in enumerate(loader, 1):
            if cancel is not None and cancel():
                status, message, stopped = "cancelled", f"stopped in epoch {epoch}", True
                break
            loss = objective(runner, batch, device)
            if not torch.isfinite(loss):
                status, stopped = "diverged", True
                message = (
                    f"training diverged (loss is {loss.item()}) in epoch {epoch}, step {step}; "
                    f"kept the prompts of epoch {best_epoch}" + ("" if best_epoch else " (the starting ones)")
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 5.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if progress is not None and ctx.is_main:
                progress(
                    Progress(
                        "train",
                        step,
                        len(loader),
                        epoch=epoch,
                        epochs=epochs,
                        loss=losses[-1],
                        seconds=time.perf_counter() - start,
                    )
                )
        if status == "diverged":
            model.load_state_dict(best_state)
            last_thresholds = best_thresholds
            break
        if not losses:  # cancelled before the first step of this epoch
            break
        metrics, last_thresholds = {}, dict(starting or {}) if fixed or val_set else {}
        if val_set:
            metrics, last_thresholds = _validate(model, val_set, device, starting, fixed)
        score = _score(metrics, cfg.choose_on) if val_set else -float(np.mean(losses))
        improved = score > best_score
        if improved:
            best_score, best_epoch, best_metrics, stale = score, epoch, metrics, 0
            best_thresholds = last_thresholds
            best_state = _state(model)
            if best_path is not None and ctx.is_main:
                save_prompt_set(
                    best_path,
                    model,
                    backbone_sha256,
                    {**meta, "metrics": metrics, "thresholds": last_thresholds, "epoch": epoch, "kind": "best"},
                )
        else:
            stale += 1
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val": metrics,
            "thresholds": last_thresholds,
            "best_epoch": best_epoch,
            "best_score": best_score,
            "seconds": time.perf_counter() - start,
        }
        history.append(record)
        if cfg.minutes is not None and not ctx.enabled:
            fit = epochs_that_fit(cfg.minutes, cfg.epochs, epoch, time.perf_counter() - looped)
            if epoch <= 2:  # the pace of the first two epochs sets the schedule
                epochs, schedule.total = fit, max(fit * len(loader), 1)
            elif fit < epochs:  # slower than it was: stop at the budget, the schedule as it is
                epochs = fit
            if epoch >= epochs and epoch < cfg.epochs:
                status, message = "finished", f"trained {epoch} epochs in the time budget of {cfg.minutes:g} min"
        if best_path is not None and ctx.is_main:
            write_text_atomic(stats_path_for(best_path), json.dumps(_finite(history), indent=1))
        if progress is not None and ctx.is_main:
            progress(
                Progress(
                    "train",
                    epoch,
                    epochs,
                    unit="epoch",
                    epoch=epoch,
                    epochs=epochs,
                    loss=record["train_loss"],
                    metrics=metrics,
                    best=improved,
                    seconds=record["seconds"],
                )
            )
        if stopped:
            break
        if stale >= cfg.patience:
            status, message = "early-stopped", f"no better validation score for {cfg.patience} epochs"
            break

    final_path = None
    if best_path is not None and ctx.is_main:
        final_path = final_path_for(best_path)
        save_prompt_set(
            final_path,
            model,
            backbone_sha256,
            {**meta, "kind": "final", "thresholds": last_thresholds, "history": history},
        )
        if best_epoch == 0:  # nothing finished, or nothing beat the start: the starting point is the best there is
            model_state = copy.deepcopy(model.state_dict())
            model.load_state_dict(best_state)
            start_meta = {"metrics": best_metrics, "thresholds": best_thresholds} if best_metrics else {}
            save_prompt_set(best_path, model, backbone_sha256, {**meta, **start_meta, "kind": "best", "epoch": 0})
            model.load_state_dict(model_state)
    if best_epoch == 0 and best_metrics and status == "finished":
        message += "; no epoch did better on the validation images than the starting prompts, which are kept"
    ctx.barrier()
    result = TrainResult(
        status=status,
        message=message,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        history=history,
        best_path=best_path,
        final_path=final_path,
        seconds=time.perf_counter() - start,
        thresholds=best_thresholds,
        final_thresholds=last_thresholds,
    )
    if status == "cancelled":
        raise Cancelled(message, result)
    return result
