"""`calibrate`, `calibrate-class` and `eval`: thresholds, the class from
lesion shape, and scores on labelled data."""

from __future__ import annotations

from ..io.files import check_new_file
from .segment import _load
from .training import _examples


def cmd_calibrate(args) -> int:
    from ..engine.checkpoints import with_thresholds
    from ..engine.device import resolve_device
    from ..engine.evaluate import (
        CANDIDATES,
        MODALITY_NAMES,
        calibrate_thresholds,
        global_dice,
        merged_lesions,
        predict,
    )
    from ..io.weights import default_prompts

    source = args.prompts or default_prompts()
    check_new_file(args.out, overwrite=True)  # may be --prompts: the set is then recalibrated in place
    model, meta = _load(args)
    examples = _examples(args.data, model.cfg.img_size, args.seed, args.tissue)
    lesion_prob, _ = predict(model, examples, resolve_device(args.device))
    new = calibrate_thresholds(examples, lesion_prob)
    old = meta["thresholds"]
    pairs: dict[str, list] = {}
    for idx, prob, truth in merged_lesions(examples, lesion_prob):
        pairs.setdefault(MODALITY_NAMES[examples[idx[0]].modality], []).append((prob, truth))

    def score(modality, t):
        value = global_dice((p > t, truth) for p, truth in pairs[modality])
        return "n/a" if value is None else f"{value:.3f}"

    print(f"{'':6s} {'images':>6s} {'old thr':>8s} {'gDice':>6s} {'new thr':>8s} {'gDice':>6s}")
    for modality, thr in sorted(new.items()):
        before = old.get(modality, 0.5)
        print(
            f"{modality:6s} {len(pairs[modality]):6d} {before:8.2f} {score(modality, before):>6s} "
            f"{thr:8.2f} {score(modality, thr):>6s}"
        )
    kept = {k: v for k, v in old.items() if k not in new}
    note = f"calibrated on {', '.join(args.data)} (candidates {CANDIDATES[0]}-{CANDIDATES[-1]})"
    with_thresholds(source, args.out, {**kept, **new}, note)
    print(f"-> {args.out}")
    return 0


def _fit_rows(args, rows_of):
    """The prompt set a `calibrate-*` command writes from (`--prompts` or the
    shipped default) and `rows_of(segmenter, dataset, first, progress)` over
    each `--data` spec, with a progress bar: [(rows, image count)]. The
    Segmenter reads the set as `segment` does."""
    from tqdm import tqdm

    from ..engine.data import open_folder_spec
    from ..engine.infer import Segmenter
    from ..io.weights import default_prompts

    source = args.prompts or default_prompts()
    check_new_file(args.out, overwrite=True)  # may be --prompts: the set then gains the fit in place
    model, meta = _load(args)
    segmenter = Segmenter.for_set(model, meta, args.device)
    parts = []
    for spec in args.data:
        dataset, first = open_folder_spec(spec)
        total = len(dataset) if first is None else min(first, len(dataset))
        bar = tqdm(total=total, desc=f"segmenting {spec}", disable=args.quiet)
        parts.append((rows_of(segmenter, dataset, first, lambda p, bar=bar: bar.update(p.done - bar.n)), total))
        bar.close()
    return source, parts


def cmd_calibrate_class(args) -> int:
    import numpy as np

    from ..engine.checkpoints import with_metadata
    from ..engine.lesion_class import fit_shape, shape_rows
    from ..scoring.metrics import roc_auc

    # shape_rows reads the class head alone, whatever class fit the set has
    source, parts = _fit_rows(args, lambda seg, data, first, bar: shape_rows(seg, data, args.modality, first, bar))
    x, y = np.concatenate([rows[0] for rows, _ in parts]), np.concatenate([rows[1] for rows, _ in parts])
    fit = fit_shape(x, y, args.modality)
    head = roc_auc(x[:, 0], y)
    both = roc_auc(np.array([fit.malignancy(r) for r in x]), y)
    print(
        f"{len(y)} {args.modality} images with a lesion drawn ({int(y.sum())} malignant): benign-vs-malignant "
        f"AUC on them {head:.3f} from the class head, {both:.3f} with the lesion's shape (fitted here: "
        "score it on other patients)"
    )
    note = f"fitted on {', '.join(args.data)}"
    with_metadata(source, args.out, {"class_shape": fit.to_json(), "class_shape_data": note})
    print(f"-> {args.out}")
    return 0


def cmd_calibrate_regions(args) -> int:
    import numpy as np

    from ..engine.checkpoints import with_metadata
    from ..engine.lesion_choice import REGION_FEATURES, choice_rows
    from ..engine.lesion_class import fit_shape
    from ..errors import AvptError

    # choice_rows draws every region, unranked, whatever lesion choice the set has
    source, parts = _fit_rows(args, lambda seg, data, first, bar: choice_rows(seg, data, args.modality, first, bar))
    x, y = np.concatenate([rows[0] for rows, _ in parts]), np.concatenate([rows[1] for rows, _ in parts])
    offsets = np.cumsum([0] + [total for _, total in parts[:-1]])  # images numbered across the datasets
    frames = np.concatenate([rows[2] + k for (rows, _), k in zip(parts, offsets)])
    if len(np.unique(frames)) < 10 or y.all() or not y.any():
        raise AvptError(
            "fitting the lesion choice needs at least 10 images with a lesion drawn, and regions both on and off "
            f"their lesions (here {len(np.unique(frames))} images, {len(y)} regions, {int(y.sum())} on a lesion)"
        )
    fit = fit_shape(x, y, args.modality, features=REGION_FEATURES)
    score = np.array([fit.probability(r) for r in x])

    def first_is_lesion(rank):
        return np.mean([y[frames == f][np.argmax(rank[frames == f])] for f in np.unique(frames)])

    print(
        f"{len(np.unique(frames))} {args.modality} images with a lesion drawn, {len(y)} regions ({int(y.sum())} on "
        f"the lesion): the region ranked first is the lesion on {first_is_lesion(x[:, 0]):.1%} of them by "
        f"probability mass, {first_is_lesion(score):.1%} by the fit (fitted here: score it on other patients)"
    )
    note = f"fitted on {', '.join(args.data)}"
    with_metadata(source, args.out, {"lesion_choice": fit.to_json(), "lesion_choice_data": note})
    print(f"-> {args.out}")
    return 0


def cmd_eval(args) -> int:
    import json

    from ..engine.device import resolve_device
    from ..engine.evaluate import evaluate, threshold_for

    model, meta = _load(args)
    examples = _examples(args.data, model.cfg.img_size, args.seed, args.tissue)
    threshold = args.threshold if args.threshold is not None else meta["thresholds"]
    metrics = evaluate(model, examples, resolve_device(args.device), threshold=threshold)
    if args.json:
        print(json.dumps(metrics, indent=1))
        return 0

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    rows = [("all", metrics)] + list(metrics["per_modality"].items())
    print(f"{'':6s} {'n':>5s} {'Dice':>6s} {'IoU':>6s} {'gDice':>6s} {'clean':>6s} {'AUC':>6s} {'acc':>6s} {'thr':>5s}")
    for name, m in rows:
        cells = [fmt(m[k]) for k in ("dice", "iou", "global_dice", "clean", "auc", "accuracy")]
        thr = "" if name == "all" else f"{threshold_for(threshold, name):.2f}"
        print(f"{name:6s} {m['n']:5d} " + " ".join(f"{c:>6s}" for c in cells) + f" {thr:>5s}")
    print(
        "Dice, IoU: mean over images (MRI: slices) with a lesion; gDice: pooled over all pixels of all images, "
        "lesion-free ones too; clean: share of lesion-free images with no lesion drawn"
    )
    return 0
