"""`train`, `pretrain` and `export-backbone`."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from ..errors import AvptError
from ..io.files import check_new_file


def cmd_pretrain(args) -> int:
    import torch
    from tqdm import tqdm

    from ..engine.pretrain import PretrainConfig, phantom_pool, pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    if not str(args.out).endswith(".safetensors"):
        raise AvptError("--out must be a .safetensors file")
    check_new_file(args.out, args.overwrite, also=(args.out.with_suffix(".json"),))
    cfg = PretrainConfig(
        backbone=args.backbone,
        img_size=args.img_size,
        pool_mg=args.pool_mg,
        pool_us=args.pool_us,
        pool_mr_volumes=args.pool_mr,
        batch_size=args.batch_size,
        minutes=args.minutes,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
    )
    bars = {}

    def pool_progress(p):
        bar = bars.setdefault(p.label, tqdm(total=p.total, desc=f"phantoms {p.label}", disable=args.quiet))
        bar.update(p.done - bar.n)

    start = time.perf_counter()
    pool = phantom_pool(cfg, pool_progress)
    for bar in bars.values():
        bar.close()
    print(
        f"pool of {len(pool)} phantom images in {time.perf_counter() - start:.0f} s; pretraining for "
        + (f"{args.steps} steps" if args.steps else f"{args.minutes} min")
    )

    def progress(p):
        if p.unit == "epoch":
            print(f"epoch {p.epoch}: MAE loss {p.loss:.4f} ({p.seconds / 60:.1f} min)", flush=True)

    summary = pretrain(cfg, args.out, pool=pool, progress=progress)
    print(f"{summary['steps']} steps in {summary['seconds'] / 60:.1f} min -> {summary['out']}")
    return 0


def cmd_export_backbone(args) -> int:
    from ..engine import create_backbone, state_sha256
    from ..engine.checkpoints import export_backbone, read_metadata

    check_new_file(args.out, args.overwrite)
    out = export_backbone(args.prompts, args.out, args.recipe)
    meta = read_metadata(args.prompts)
    vit = create_backbone(meta["backbone"], int(meta["img_size"]), weights=out)
    print(f"-> {out} (sha256 of the state {state_sha256(vit)[:16]}...)")
    return 0


def _examples(specs, size, seed, tissue, quiet: bool = False, jobs: int = 1):
    from tqdm import tqdm

    from ..engine.data import parse_data_spec

    if jobs > 1:
        from ..engine.prepare import prepare_specs

        with tqdm(desc=f"preparing with {jobs} processes", unit="image", disable=quiet, leave=False) as bar:

            def progress(p):
                bar.total = p.total
                bar.update(p.done - bar.n)

            per_spec = prepare_specs(specs, size, seed, tissue, jobs=jobs, progress=progress)
    examples = []
    for n, spec in enumerate(specs):
        if jobs > 1:
            _warn_if_lesion_free(per_spec[n], spec, specs)
            examples += per_spec[n]
            continue
        bar = None

        def progress(p, spec=spec):
            nonlocal bar
            if bar is None:
                bar = tqdm(total=p.total, desc=f"preparing {spec}", unit="image", disable=quiet, leave=False)
            bar.update(p.done - bar.n)

        try:
            mine = parse_data_spec(spec, size, seed, tissue, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        _warn_if_lesion_free(mine, spec, specs)
        examples += mine
    if not examples:
        raise AvptError("the data gave no examples")
    return examples


def _warn_if_lesion_free(mine, spec, specs) -> None:
    if len(specs) > 1 and mine and not any(bool(e.lesion.any()) for e in mine):
        print(
            f"napari-avpt: warning: {spec}: every mask is empty; its images are learnt as lesion-free",
            file=sys.stderr,
        )


def _check_something_to_learn(examples, specs) -> None:
    """Training data without a single painted lesion teaches the lesion
    decoder nothing but "no lesion": refused, since that is nearly always
    an empty or misplaced masks folder."""
    if not any(bool(e.lesion.any()) for e in examples):
        raise AvptError(
            f"no image of {', '.join(specs)} has a lesion in its mask: nothing about lesions can be learnt "
            "(check the masks, or add data with lesions beside these lesion-free images)"
        )


def cmd_train(args) -> int:
    import torch
    from tqdm import tqdm

    from ..engine import backbone_meta, build_model
    from ..engine.evaluate import MODALITY_NAMES
    from ..engine.lesion_class import carried_meta
    from ..engine.train import TrainConfig, final_path_for, stats_path_for, train, tuned_parameter_count
    from ..model import ModelConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if not str(args.out).endswith(".safetensors"):
        raise AvptError("--out must be a .safetensors file")
    # The earlier set (and its .final and .stats.json) is never replaced unasked.
    check_new_file(args.out, args.overwrite, also=(final_path_for(args.out), stats_path_for(args.out)))
    for option in ("init", "decoder_from", "backbone_weights"):
        given = getattr(args, option)
        if given is not None and not given.is_file():
            raise AvptError(f"--{option.replace('_', '-')} {given}: no such file")
    cfg = ModelConfig(method=args.method, backbone=args.backbone, img_size=args.img_size)
    if args.class_from is not None:
        cfg = replace(cfg, class_from=args.class_from)
    if args.fuse_channels is not None:
        if args.init is not None:
            raise AvptError("--fuse-channels shapes a new set's decoder: --init keeps the set's own")
        cfg = replace(cfg, fuse_channels=args.fuse_channels)
    if args.tune != "all" and args.init is None:
        raise AvptError(f"--tune {args.tune} needs --init: the prompt set whose heads to train")
    if args.new_decoder and (args.init is None or args.tune == "class-head"):
        raise AvptError(
            "--new-decoder redraws the lesion decoder of --init's set: give --init and --tune all, heads or decoder"
        )
    if args.decoder_per_modality and args.tune == "class-head":
        raise AvptError("--decoder-per-modality changes the lesion decoder: --tune class-head leaves it as it is")
    if args.hub and args.backbone_weights is not None:
        raise AvptError("choose either --hub or --backbone-weights")
    if args.init is not None:
        from ..engine import backbone_meta_of, load_model, with_class_head

        if args.hub:
            raise AvptError("--init brings its own backbone: leave out --hub")
        model, init_meta = load_model(args.init, args.backbone_weights)
        if model.cfg.method != args.method or model.cfg.img_size != args.img_size:
            raise AvptError(f"--init {args.init.name} is a {model.cfg.method} set at {model.cfg.img_size} px")
        sha = init_meta["backbone_sha256"]
        if args.class_from is not None:
            model = with_class_head(model, args.class_from, seed=args.seed)
        # The new set is rebuilt on the backbone the init set names, unless one is given.
        rebuild = backbone_meta_of(init_meta)
    else:
        model, sha = build_model(cfg, args.backbone_weights, hub=args.hub, seed=args.backbone_seed)
        rebuild = backbone_meta(args.backbone_weights, args.backbone_seed, args.hub)
    if args.backbone_weights is not None:
        rebuild = backbone_meta(args.backbone_weights)
    if args.decoder_from is not None:
        from ..engine.checkpoints import adopt_decoder

        if args.init is not None:
            raise AvptError("--decoder-from starts a new set's decoder: --init keeps the set's own")
        print(f"lesion decoder from {args.decoder_from.name}: {len(adopt_decoder(model, args.decoder_from))} tensors")
    if args.decoder_per_modality:
        model.split_decoder()
    examples = _examples(args.data, args.img_size, args.seed, args.tissue, args.quiet, args.jobs)
    if args.new_decoder:
        torch.manual_seed(args.seed)
        drawn = sorted({MODALITY_NAMES[e.modality] for e in examples}) if model.cfg.decoder_per_modality else None
        model.redraw_decoder(drawn)
        print(f"lesion decoder: newly drawn{' for ' + ', '.join(drawn) if drawn else ''}")
    trainable, total = tuned_parameter_count(model, args.tune), model.parameter_counts()[1]
    print(f"{args.method}: {trainable:,d} trainable of {total:,d} parameters ({100 * trainable / total:.2f} %)")
    if args.tune != "class-head":
        _check_something_to_learn(examples, args.data)
    print(f"{len(examples)} training examples from {', '.join(args.data)}")
    val_examples = None
    if args.val_data:
        val_examples = _examples(args.val_data, args.img_size, args.seed + 1, args.tissue, args.quiet, args.jobs)
        print(f"{len(val_examples)} validation examples from {', '.join(args.val_data)}")
    tcfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.val_fraction,
        patience=args.patience,
        choose_on=args.choose_on,
        device=args.device,
        lambda_supcon=args.lambda_supcon,
        lambda_attention=args.lambda_attention,
        lambda_negative=args.lambda_negative,
        tune=args.tune,
        strong_augment=args.strong_augment,
        workers=args.workers,
        minutes=args.minutes,
        # the set's own prompts are a candidate, not a newly drawn decoder or class head
        score_start=args.init is not None and not args.new_decoder and args.class_from is None,
    )
    bar = tqdm(total=None, unit="step", disable=args.quiet)

    def progress(p):
        if p.unit == "step":
            bar.update(1)
            bar.set_postfix(epoch=p.epoch, loss=f"{p.loss:.3f}")
        else:
            dice = p.metrics.get("dice")
            bar.write(
                f"epoch {p.epoch}/{p.epochs}: train loss {p.loss:.3f}"
                f", val Dice {dice if dice is None else round(dice, 3)}, val accuracy {p.metrics.get('accuracy')}"
                + (" *" if p.best else "")
            )

    meta = {**rebuild, "data": args.data, **({"val_data": args.val_data} if args.val_data else {})}
    if args.decoder_from is not None:
        meta["decoder_from"] = args.decoder_from.name
    if args.init is not None:
        meta["init"] = args.init.name
        carried = carried_meta(init_meta, args.init.name)
        if args.class_from is not None:  # a fresh class head would not match the class fit; the rest still holds
            carried = {k: v for k, v in carried.items() if not k.startswith("class_shape")}
        meta.update(carried)
    meta["modalities"] = sorted({MODALITY_NAMES[e.modality] for e in examples})
    if args.tune != "all":
        meta["tune"] = args.tune
    if args.new_decoder:
        meta["new_decoder"] = ",".join(drawn) if drawn else True  # the modalities drawn anew
    keep = init_meta["thresholds"] if args.init is not None else None
    result = train(
        model, examples, tcfg, args.out, sha, progress, extra_meta=meta, thresholds=keep, val_examples=val_examples
    )
    bar.close()
    print(f"{result.status}: {result.message}; best epoch {result.best_epoch}, {result.seconds:.0f} s")
    print(f"best: {result.best_path}\nfinal: {result.final_path}")
    return 0 if result.status != "diverged" else 1
