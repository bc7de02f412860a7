"""The `napari-avpt` command line.

Errors the user can fix are printed on one line and exit with code 2,
checked before any work starts where they can be. A batch (`segment` of
several inputs) goes on past an input that fails and exits 2 at the end,
after a summary line. SIGTERM unwinds like Ctrl-C: nothing half-written is
left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import __version__
from .errors import AvptError
from .files import Terminated, check_new_file, check_writable_folder, handle_termination

SAMPLES = ("mammogram", "ultrasound", "mri")


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text} must be at least {least}" if least else f"{text} must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _nonnegative_int(text: str) -> int:
    return _whole(text, 0)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def _nonnegative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1")
    return value


def _img_size(text: str) -> int:
    value = _positive_int(text)
    if value < 32 or value % 16:
        raise argparse.ArgumentTypeError(f"{text}: the input size must be a multiple of 16, at least 32")
    return value


def _modality(text: str) -> str:
    from .model.config import parse_modality

    try:
        return parse_modality(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _size(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x416 or 48x144x176, not {text!r}") from None
    if not values or any(v < 16 for v in values):
        raise argparse.ArgumentTypeError(f"every size must be at least 16 pixels: {text!r}")
    return values


def cmd_phantoms(args) -> int:
    from tqdm import tqdm

    from .phantoms.formats import write_dataset

    expected_dims = 3 if args.format == "duke" else 2
    if args.size is not None and len(args.size) != expected_dims:
        raise AvptError(f"--size for {args.format} needs {expected_dims} numbers")
    check_writable_folder(args.out)
    if args.out.exists() and any(args.out.iterdir()):
        raise AvptError(
            f"{args.out} already exists and is not empty: choose a new --out folder (nothing was overwritten)"
        )
    bar = tqdm(total=args.n, desc=f"{args.format} phantoms", unit="image", disable=args.quiet)

    def progress(done, total):
        bar.update(done - bar.n)

    start = time.perf_counter()
    try:
        out = write_dataset(args.format, args.n, args.seed, args.out, args.size, progress)
    except FileExistsError as e:
        raise AvptError(f"{e}: choose a new --out folder (nothing was overwritten)") from None
    bar.close()
    print(f"wrote {args.n} {args.format} phantoms to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_inspect(args) -> int:
    from .io import read_path

    for path in args.paths:
        start = time.perf_counter()
        images = read_path(path)
        elapsed = time.perf_counter() - start
        for im in images:
            for problem in im.meta.pop("folder_warnings", []):
                print(f"{path}: skipped: {problem}")
            kind = "labels" if im.labels else ("rgb" if im.rgb else "image")
            spacing = " x ".join(f"{s:.4g}" for s in im.spacing)
            print(
                f"{path}: {im.name!r} {kind} {im.data.shape} {im.data.dtype} modality={im.modality} "
                f"spacing_mm=({spacing}) window={tuple(round(w, 1) for w in im.window) if im.window else None} "
                f"laterality={im.meta.get('laterality')} view={im.meta.get('view')}"
            )
        print(f"read in {elapsed:.2f} s")
    return 0


def _wait_for(condition, timeout: float = 600.0) -> None:
    """Let Qt run (workers report back through its event loop) until
    `condition()` holds."""
    from qtpy.QtWidgets import QApplication

    start = time.perf_counter()
    while not condition():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - start > timeout:
            raise AvptError("the demo timed out waiting for its worker")


def cmd_demo(args) -> int:
    import napari
    import numpy as np

    from .weights import default_prompts

    if args.image is not None and not args.image.exists():
        raise AvptError(f"--image {args.image}: no such file or folder")
    viewer = napari.Viewer(title="napari-avpt demo")
    if args.image is not None:  # a file of the user's (or a public dataset's) instead of a sample
        layers = viewer.open(str(args.image), plugin="napari-avpt")
        if args.modality is not None:
            for layer in layers:
                layer.metadata["modality"] = args.modality
    else:
        layers = viewer.open_sample("napari-avpt", args.sample)
    _, segment = viewer.window.add_plugin_dock_widget("napari-avpt", "A-VPT: Segment lesion")
    truth = next((lay for lay in layers if lay.name.endswith("lesion truth")), None)
    image = next(lay for lay in layers if lay._type_string == "image" and lay.visible)
    if truth is not None and truth.ndim == 3 and truth.data.any():
        # Open a volume on the slice through the lesion, not on an empty one.
        z = int(np.mean(np.nonzero(truth.data)[0]))
        viewer.dims.set_point(0, truth.data_to_world((z, 0, 0))[0])
    prompts = args.prompts or default_prompts()
    if args.tune_screenshot:
        _, tune = viewer.window.add_plugin_dock_widget("napari-avpt", "A-VPT: Tune prompts")
        tune.image.value, tune.labels.value = image, truth
        tune.finding.value = image.metadata.get("label", "malignant")
        tune.add_pair.clicked()
        tune.epochs.value = 8
        tune.start.clicked()
        _wait_for(lambda: len(tune.history) >= 3)
        return _screenshot(
            viewer, args.tune_screenshot, after=lambda: (tune.stop.clicked(), _wait_for(lambda: tune.worker is None))
        )
    if args.image is None:
        viewer.window.add_plugin_dock_widget("napari-avpt", "Breast phantom")
    if prompts is not None:
        segment.reset_choices()
        segment.image.value = image
        segment.add_prompt_file(prompts)
        if args.screenshot:
            segment.segment()
            _wait_for(lambda: segment.worker is None)
    if args.screenshot:
        return _screenshot(viewer, args.screenshot)
    napari.run()
    return 0


def _screenshot(viewer, path, after=None) -> int:
    from qtpy.QtWidgets import QApplication

    viewer.window.resize(1500, 950)
    QApplication.processEvents()
    viewer.reset_view()  # the whole image in the canvas as it is now laid out
    QApplication.processEvents()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    if after is not None:
        after()
    viewer.close()
    print(f"saved {out}")
    return 0


def cmd_classical(args) -> int:
    from .bench import classical_dice

    for modality, r in classical_dice(args.modality, args.n, args.seed).items():
        print(f"{modality}: classical threshold+blob lesion Dice {r['dice']:.3f} +- {r['sd']:.3f} (n={r['n']})")
    return 0


def cmd_bench(args) -> int:
    import json

    import torch

    from . import bench

    for option, path in (("--json", args.json), ("--report", args.report)):
        if path is not None:
            check_new_file(path, overwrite=True, option=option)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {}
    if "speed" in args.part:
        report["speed"] = [bench.model_speed(args.repeats, batch) for batch in (1, 8)]
        for r in report["speed"]:
            print(
                f"batch {r['batch']}: plain frozen ViT {r['plain_vit_ms']:.1f} ms/image, A-VPT {r['avpt_ms']:.1f} ms "
                f"(x{r['ratio']:.2f}), with attention maps {r['avpt_with_attention_ms']:.1f} ms "
                f"(x{r['ratio_with_attention']:.2f}); {r['threads']} threads"
            )
    if "e2e" in args.part:
        prompts = _bench_prompts(args)
        r = report["end_to_end"] = bench.end_to_end(prompts=prompts)
        r["big_volume"] = bench.volume_peak_memory(prompts=prompts) if not args.quick else None
        print(
            f"end to end (read -> layers): mammogram 512x416 {r['mammogram_512_s']:.2f} s, "
            f"3000x2500 {r['mammogram_3000_s']:.2f} s; 64-slice MRI {r['volume_64_slices_s']:.1f} s; "
            f"peak memory {r['peak_memory_mb']:.0f} MB"
        )
        if r["big_volume"]:
            b = r["big_volume"]
            print(f"MRI volume {b['shape']}: {b['seconds']:.1f} s, peak memory {b['peak_memory_mb']:.0f} MB")
    if "whole" in args.part:
        prompts = _bench_prompts(args)
        if prompts is None:
            raise AvptError("bench --part whole needs --prompts FILE (or shipped default weights)")
        report["whole"] = bench.segmenter_dice(prompts, n=args.n)
        for modality, r in report["whole"].items():
            print(
                f"whole {modality} (n={r['n']}): lesion Dice {_fmt(r['dice'])} +- {_fmt(r['sd'])}, "
                f"{r['over_0.7']}/{r['with_lesion']} over 0.7; lesion-free clean {_fmt(r['clean'])}; "
                f"class accuracy {r['accuracy']:.2f}"
            )
    if "priors" in args.part:
        report["priors"] = bench.prior_dice(args.n)
        for modality, r in report["priors"].items():
            print(f"anatomy priors {modality}: " + ", ".join(f"{k} Dice {v:.3f}" for k, v in r.items()))
    if "classical" in args.part:
        report["classical"] = bench.classical_dice(n=args.n)
        for modality, r in report["classical"].items():
            print(f"classical threshold+blob {modality}: lesion Dice {r['dice']:.3f} +- {r['sd']:.3f}")
    weights = _bench_backbone(args)
    if "probe" in args.part:
        if weights is None:
            raise AvptError("bench --part probe needs --backbone-weights (or shipped default weights)")
        from .probe import probe_gate

        sizes = {"n_train": 6, "n_test": 4, "img_size": 64} if args.quick else {"n_train": 60, "n_test": 30}
        report["probe"] = {"sizes": sizes, "result": probe_gate(weights, **sizes)}
        for name, r in report["probe"]["result"].items():
            print(
                f"linear probe, {name} backbone: "
                + "; ".join(
                    f"{m} lesion-patch AUC {_fmt(v['lesion_patch_auc'])}, class AUC {_fmt(v['class_auc'])}"
                    for m, v in r.items()
                )
            )
    if "methods" in args.part:
        report["methods"] = _bench_methods(args, weights)
    if "fewshot" in args.part:
        report["fewshot"] = _bench_fewshot(args, weights)
    if "ui" in args.part:
        prompts = _bench_prompts(args)
        if prompts is None:
            raise AvptError("bench --part ui needs --prompts FILE (or shipped default weights)")
        report["ui"] = bench.ui_responsiveness(prompts)
        for sample, r in report["ui"].items():
            print(
                f"{sample}: first click to layers {r['first_click_s']:.2f} s, then {r['click_to_layers_s']:.2f} s; "
                f"longest UI stall {r['first_stall_ms']:.0f} ms (layers added), "
                f"{r['later_stall_ms']:.0f} ms (updated)"
            )
    if "real" in args.part:
        report["real"] = _bench_real(args)
    if "real-probe" in args.part:
        report["real_probe"] = _bench_real_probe(args, weights)
    if "real-methods" in args.part:
        report["real_methods"] = _bench_real_methods(args, weights)
    if args.report:
        _write_bench_report(args, report, weights)
    if args.json:
        from .files import write_text_atomic

        write_text_atomic(args.json, json.dumps(report, indent=1, default=str))
    return 0


def _bench_real(args) -> dict:
    from tqdm import tqdm

    from .bench_real import real_benchmark

    prompts = _bench_prompts(args)
    if prompts is None or not args.real_data:
        raise AvptError("bench --part real needs --real-data SPEC (and --prompts FILE or the shipped default)")
    bars = {}

    def progress(spec, done, total):
        if spec not in bars:  # one bar at a time: the previous spec's is done
            for bar in bars.values():
                bar.close()
            bars[spec] = tqdm(total=total, desc=f"scoring {spec}", unit="image", leave=False, disable=args.quiet)
        bars[spec].update(done - bars[spec].n)

    result = real_benchmark(prompts, args.real_data, progress)
    for bar in bars.values():
        bar.close()
    for spec, r in result.items():
        m = r["summary"]
        line = f"{spec} (n={m['n']}): lesion Dice {_fmt(m['dice'])}, IoU {_fmt(m['iou'])}"
        line += f", benign-vs-malignant AUC {_fmt(m['malignant_auc'])}, class accuracy {_fmt(m['class_accuracy'])}"
        if "masses" in m:
            line += (
                f"; masses found {_fmt(m['masses_found'])} of {m['masses']}, false lesions per image "
                f"{_fmt(m['false_lesions_per_image'])}, normals clean {_fmt(m['normals_clean'])} of {m['normals']}"
            )
        print(line)
    return result


def _bench_real_probe(args, weights) -> dict:
    from .bench_real import real_probe_gate

    if not (args.probe_train and args.probe_test):
        raise AvptError("bench --part real-probe needs --probe-train SPEC and --probe-test SPEC")
    backbones = {p.name: p for p in (args.probe_backbones or ([weights] if weights else []))}
    result = real_probe_gate({**backbones, "random": None}, args.probe_train, args.probe_test)
    for name, r in result.items():
        print(
            f"linear probe, {name}: lesion-patch AUC {_fmt(r['lesion_patch_auc'])}, benign-vs-malignant AUC "
            f"{_fmt(r['class_auc'])} ({r['n_train']} train, {r['n_test']} test images)"
        )
    return result


def _bench_real_methods(args, weights) -> dict:
    from . import bench
    from .bench_real import classical_row, compare_methods_real
    from .engine.data import open_folder_spec
    from .model import METHODS

    if not (args.train_data and args.real_data and len(args.real_data) == 1):
        raise AvptError("bench --part real-methods needs --train-data SPEC and one --real-data SPEC (held out)")
    modality = open_folder_spec(args.real_data[0])[0].modality
    methods = args.methods or list(METHODS)
    rows = compare_methods_real(
        methods,
        args.train_data,
        args.real_data[0],
        modality,
        args.n_train,
        seeds=tuple(range(args.seeds)),
        epochs=args.epochs,
        backbone_weights=weights,
        same_decoder=args.same_decoder,
        progress=_progress_row,
        jobs=args.jobs,
    )
    rows.append(classical_row(args.real_data[0]))
    table = bench.summarize_methods(rows, (modality,))
    print(bench.methods_markdown(table, (modality,)))
    return {"rows": rows, "table": table, "n_train": args.n_train, "epochs": args.epochs}


# --quick: every method and part runs, on tiny data, in about a minute.
QUICK_SIZES = {"seeds": (0,), "n_train": 4, "n_test": 3, "epochs": 1, "img_size": 64}


def _bench_prompts(args):
    from .weights import default_prompts

    return args.prompts or default_prompts()


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _bench_backbone(args):
    """--backbone-weights, else the shipped default backbone, else None (random)."""
    from .weights import DEFAULT_BACKBONE, read_checksums, verified, weights_dir

    if args.backbone_weights is not None:
        return args.backbone_weights
    folder = weights_dir()
    if folder is not None and DEFAULT_BACKBONE in read_checksums(folder):
        return verified(DEFAULT_BACKBONE, folder)
    return None


def _progress_row(row) -> None:
    print(f"  {row['backbone']:10s} {row['method']:16s} seed {row['seed']}: Dice {row['all']['dice']}", flush=True)


def _bench_methods(args, weights) -> dict:
    from . import bench

    if args.quick:
        sizes = dict(QUICK_SIZES)
    else:
        sizes = {
            "seeds": tuple(range(args.seeds)),
            "n_train": args.n_train,
            "n_test": args.n_test,
            "epochs": args.epochs,
        }
    if args.same_decoder:
        sizes["same_decoder"] = True
    rows = bench.compare_methods(
        methods=args.methods,
        backbone_weights=weights,
        progress=_progress_row,
        jobs=args.jobs,
        random_methods=args.random_methods,
        **sizes,
    )
    table = bench.summarize_methods(rows)
    print(bench.methods_markdown(table))
    return {"rows": rows, "table": table, "sizes": sizes}


def _bench_fewshot(args, weights) -> dict:
    """The tuning dock's case: 20 annotated images of one modality (2 MRI
    volumes), a few methods, each modality on its own."""
    from . import bench

    methods = tuple(args.methods) if args.methods else ("avpt", "vpt-deep", "linear", "full")
    out = {"rows": [], "sizes": {}}
    for modality in ("MG", "US", "MR"):
        if args.quick:
            sizes = dict(QUICK_SIZES)
        else:
            sizes = {
                "seeds": tuple(range(args.seeds)),
                "n_train": 20 if modality != "MR" else 8,
                "n_test": args.n_test,
                "epochs": args.epochs,
            }
        if args.same_decoder:
            sizes["same_decoder"] = True
        out["sizes"][modality] = sizes
        rows = bench.compare_methods(
            methods=methods,
            modalities=(modality,),
            backbone_weights=weights,
            include_random_backbone=weights is None,
            progress=_progress_row,
            jobs=args.jobs,
            **sizes,
        )
        out["rows"] += [r for r in rows if r["method"] != "classical"]
    out["table"] = bench.summarize_methods(out["rows"])
    print(bench.methods_markdown(out["table"]))
    return out


def _write_bench_report(args, report: dict, weights) -> None:
    import datetime
    import platform
    import sys

    from . import bench
    from .files import write_text_atomic

    command = (
        "napari-avpt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("napari-avpt") else "napari-avpt bench ..."
    )
    header = (
        f"Measured {datetime.date.today()} on {platform.machine()} ({platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, no GPU) with `{command}`; "
        f"backbone weights: {Path(weights).name if weights else 'random'}."
    )
    plot = Path(args.report).with_suffix(".png") if "methods" in report else None
    if plot is not None:
        bench.methods_plot(report["methods"]["table"], plot)
    text = bench.report_markdown(report, header, plot.name if plot else None)
    write_text_atomic(args.report, text)
    print(f"wrote {args.report}" + (f" and {plot}" if plot else ""))


def cmd_pretrain(args) -> int:
    import torch
    from tqdm import tqdm

    from .engine.pretrain import PretrainConfig, phantom_pool, pretrain

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

    def pool_progress(modality, done, total):
        bar = bars.setdefault(modality, tqdm(total=total, desc=f"phantoms {modality}", disable=args.quiet))
        bar.update(done - bar.n)

    start = time.perf_counter()
    pool = phantom_pool(cfg, pool_progress)
    for bar in bars.values():
        bar.close()
    print(
        f"pool of {len(pool)} phantom images in {time.perf_counter() - start:.0f} s; pretraining for "
        + (f"{args.steps} steps" if args.steps else f"{args.minutes} min")
    )

    def progress(event):
        if event["kind"] == "epoch":
            print(f"epoch {event['epoch']}: MAE loss {event['loss']:.4f} ({event['seconds'] / 60:.1f} min)", flush=True)

    summary = pretrain(cfg, args.out, pool=pool, progress=progress)
    print(f"{summary['steps']} steps in {summary['seconds'] / 60:.1f} min -> {summary['out']}")
    return 0


def cmd_export_backbone(args) -> int:
    from .engine import create_backbone, state_sha256
    from .engine.checkpoints import export_backbone, read_metadata

    check_new_file(args.out, args.overwrite)
    out = export_backbone(args.prompts, args.out, args.recipe)
    meta = read_metadata(args.prompts)
    vit = create_backbone(meta["backbone"], int(meta["img_size"]), weights=out)
    print(f"-> {out} (sha256 of the state {state_sha256(vit)[:16]}...)")
    return 0


def cmd_info(args) -> int:
    import napari
    import torch

    from .engine import build_model
    from .engine.device import resolve_device
    from .model import METHODS, ModelConfig

    print(f"napari-avpt {__version__} (napari {napari.__version__}, torch {torch.__version__})")
    print(f"device: {resolve_device(args.device)}")
    print(f"backbone: {args.backbone} at {args.img_size} px")
    for method in METHODS:
        model, _ = build_model(ModelConfig(method=method, backbone=args.backbone, img_size=args.img_size))
        trainable, total = model.parameter_counts()
        print(
            f"  {method:16s} trainable {trainable:>9,d} of {total:>10,d} parameters = {100 * trainable / total:6.2f} %"
        )
    return 0


def _examples(specs, size, seed, tissue, quiet: bool = False):
    from tqdm import tqdm

    from .engine.data import parse_data_spec

    examples = []
    for spec in specs:
        bar = None

        def progress(done, total, spec=spec):
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc=f"preparing {spec}", unit="image", disable=quiet, leave=False)
            bar.update(done - bar.n)

        try:
            mine = parse_data_spec(spec, size, seed, tissue, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        if len(specs) > 1 and mine and not any(bool(e.lesion.any()) for e in mine):
            print(
                f"napari-avpt: warning: {spec}: every mask is empty; its images are learnt as lesion-free",
                file=sys.stderr,
            )
        examples += mine
    if not examples:
        raise AvptError("the data gave no examples")
    return examples


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

    from .engine import backbone_meta, build_model
    from .engine.evaluate import MODALITY_NAMES
    from .engine.train import TrainConfig, final_path_for, stats_path_for, train, tuned_parameter_count
    from .model import ModelConfig

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
    if args.tune == "class-head" and args.init is None:
        raise AvptError("--tune class-head needs --init: the prompt set whose class head to train")
    if args.hub and args.backbone_weights is not None:
        raise AvptError("choose either --hub or --backbone-weights")
    if args.init is not None:
        from .engine import load_model, with_class_head

        if args.hub:
            raise AvptError("--init brings its own backbone: leave out --hub")
        model, init_meta = load_model(args.init, args.backbone_weights)
        if model.cfg.method != args.method or model.cfg.img_size != args.img_size:
            raise AvptError(f"--init {args.init.name} is a {model.cfg.method} set at {model.cfg.img_size} px")
        sha = init_meta["backbone_sha256"]
        if args.class_from is not None:
            model = with_class_head(model, args.class_from, seed=args.seed)
        # The new set is rebuilt on the backbone the init set names, unless one is given.
        rebuild = {k: init_meta[k] for k in ("backbone_weights", "backbone_hub", "backbone_seed") if k in init_meta}
    else:
        model, sha = build_model(cfg, args.backbone_weights, hub=args.hub, seed=args.backbone_seed)
        rebuild = backbone_meta(args.backbone_weights, args.backbone_seed, args.hub)
    if args.backbone_weights is not None:
        rebuild = backbone_meta(args.backbone_weights)
    if args.decoder_from is not None:
        from .engine.checkpoints import adopt_decoder

        if args.init is not None:
            raise AvptError("--decoder-from starts a new set's decoder: --init keeps the set's own")
        print(f"lesion decoder from {args.decoder_from.name}: {len(adopt_decoder(model, args.decoder_from))} tensors")
    trainable, total = tuned_parameter_count(model, args.tune), model.parameter_counts()[1]
    print(f"{args.method}: {trainable:,d} trainable of {total:,d} parameters ({100 * trainable / total:.2f} %)")
    examples = _examples(args.data, args.img_size, args.seed, args.tissue, args.quiet)
    if args.tune != "class-head":
        _check_something_to_learn(examples, args.data)
    print(f"{len(examples)} training examples from {', '.join(args.data)}")
    val_examples = None
    if args.val_data:
        val_examples = _examples(args.val_data, args.img_size, args.seed + 1, args.tissue, args.quiet)
        print(f"{len(val_examples)} validation examples from {', '.join(args.val_data)}")
    tcfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.val_fraction,
        patience=args.patience,
        device=args.device,
        lambda_supcon=args.lambda_supcon,
        lambda_attention=args.lambda_attention,
        lambda_negative=args.lambda_negative,
        tune=args.tune,
        strong_augment=args.strong_augment,
    )
    bar = tqdm(total=None, unit="step", disable=args.quiet)

    def progress(event):
        if event["kind"] == "step":
            bar.update(1)
            bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.3f}")
        else:
            val = event["metrics"]
            dice = val.get("dice")
            bar.write(
                f"epoch {event['epoch']}/{event['epochs']}: train loss {event['train_loss']:.3f}"
                f", val Dice {dice if dice is None else round(dice, 3)}, val accuracy {val.get('accuracy')}"
                + (" *" if event["best"] else "")
            )

    meta = {**rebuild, "data": args.data, **({"val_data": args.val_data} if args.val_data else {})}
    if args.decoder_from is not None:
        meta["decoder_from"] = args.decoder_from.name
    if args.init is not None:
        meta["init"] = args.init.name
    meta["modalities"] = sorted({MODALITY_NAMES[e.modality] for e in examples})
    if args.tune == "class-head":
        meta["tune"] = "class-head"
    keep = init_meta["thresholds"] if args.init is not None else None
    result = train(
        model, examples, tcfg, args.out, sha, progress, extra_meta=meta, thresholds=keep, val_examples=val_examples
    )
    bar.close()
    print(f"{result.status}: {result.message}; best epoch {result.best_epoch}, {result.seconds:.0f} s")
    print(f"best: {result.best_path}\nfinal: {result.final_path}")
    return 0 if result.status != "diverged" else 1


def _load(args):
    from .engine import load_model
    from .weights import default_prompts

    prompts = args.prompts or default_prompts()
    if prompts is None:
        raise AvptError(
            "no default weights found (weights/SHA256SUMS): pass --prompts FILE (made by `napari-avpt train`)"
        )
    return load_model(prompts, args.backbone_weights)


def cmd_segment(args) -> int:
    from .engine.infer import Segmenter
    from .io.results import ResultNames

    # Everything that can be checked is, before the model loads.
    paths = list(dict.fromkeys(Path(p) for p in args.paths))  # the same input twice is segmented once
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise AvptError(f"no such file or folder: {', '.join(missing)}")
    check_writable_folder(args.out)
    names = ResultNames(args.out, args.overwrite)
    names.plan([p for p in paths if not p.is_dir()])
    pre = _pre_contrast(args.pre) if args.pre is not None else None
    model, meta = _load(args)
    threshold = args.threshold if args.threshold is not None else meta["thresholds"]
    segmenter = Segmenter(model, args.device, threshold=threshold, min_lesion_mm=args.min_lesion_mm)
    subtracted, failed = 0, []
    # A batch goes on past an input that fails: its error is printed, the
    # rest are segmented, and the run ends non-zero with a summary.
    for path in paths:
        try:
            subtracted += _segment_path(path, segmenter, pre, names, args)
        except AvptError as e:
            failed.append(path)
            print(f"napari-avpt: error: {path}: {e}", file=sys.stderr)
        except (MemoryError, OSError, ValueError, RuntimeError) as e:
            failed.append(path)
            print(f"napari-avpt: error: {path}: {type(e).__name__}: {e}", file=sys.stderr)
    if pre is not None and not subtracted and not failed:
        raise AvptError(f"--pre {args.pre}: no 3D volume was given to subtract it from")
    if failed:
        done = len(paths) - len(failed)
        print(
            f"napari-avpt: {len(failed)} of {len(paths)} inputs failed ({', '.join(str(p) for p in failed)}); "
            f"results of the other {done} are in {args.out}",
            file=sys.stderr,
        )
        return 2
    return 0


def _segment_path(path: Path, segmenter, pre, names, args) -> int:
    """Segment every image `path` holds and write its results; returns how
    many were segmented on their subtraction with --pre."""
    from .io import read_path
    from .io.results import write_segmentation
    from .model.config import modality_code

    images = read_path(path)
    # A study folder that holds the pre-contrast series: the others are
    # segmented on their subtraction, as the widget does (not with --no-pre).
    found = None if pre is not None or args.no_pre else _pre_series(images)
    subtracted = 0
    for image in images:
        if image.labels or (pre is not None and image.meta.get("source_path") == pre.meta.get("source_path")):
            continue
        this_pre = pre
        if found is not None and image is not found and found.data.shape == image.data.shape:
            this_pre = found
        modality = args.modality or modality_code(image.modality)
        if modality is None:
            raise AvptError(f"unknown modality {image.modality!r}; say it with --modality MG|US|MR")
        gray = not image.rgb
        if not (gray and image.data.ndim in (2, 3)):
            raise AvptError(f"{image.data.ndim}D {'RGB ' if image.rgb else ''}image; need 2D or 3D gray")
        if args.dicom_seg and not image.meta.get("sop_uids"):
            raise AvptError("--dicom-seg: this input was not read from DICOM (a SEG references DICOM images)")
        if image.data.ndim == 3 and this_pre is not None and this_pre.data.shape != image.data.shape:
            raise AvptError(f"the volume is {image.data.shape} but --pre is {this_pre.data.shape}")
        if path.is_dir() or len(images) > 1:  # a series: named once read, with its folders where names repeat
            stem = names.claim(path, image.name, str(image.meta.get("source_path", path)))
        else:
            stem = names.planned[path]
        spacing = image.spacing if image.meta.get("spacing_known", False) else None
        if image.data.ndim == 2:
            window = image.window if modality == "MG" else None
            seg = segmenter.segment_image(image.data, modality, window=window, spacing=spacing)
        else:
            subtracted += pre is not None
            seg = segmenter.segment_volume(
                image.data,
                modality,
                axis=image.meta.get("acquisition_axis", 0),
                spacing=spacing,
                pre=None if this_pre is None else this_pre.data,
            )
        files = write_segmentation(seg, image, args.out, stem=stem, dicom_seg=args.dicom_seg)
        print(
            f"{path}: {seg.predicted_class} ({seg.class_probabilities[seg.predicted_class]:.2f}), "
            f"{int(seg.lesion_labels.max())} lesion(s), {seg.seconds:.2f} s -> {len(files)} files {stem}* in {args.out}"
            + (f" (subtraction of '{this_pre.name}')" if seg.subtraction else "")
        )
    return subtracted


def _pre_series(images):
    """The one gray 3D series among `images` whose DICOM series
    description says it is the pre-contrast phase, else None."""
    from .io.datasets.duke import the_pre_contrast

    volumes = [im for im in images if not im.labels and not im.rgb and im.data.ndim == 3]
    return the_pre_contrast(volumes, lambda im: str(im.meta.get("SeriesDescription", "")))


def _pre_contrast(path: Path):
    """The one gray 3D volume a `--pre` path holds."""
    from .io import read_path

    volumes = [im for im in read_path(path) if not im.labels and not im.rgb and im.data.ndim == 3]
    if len(volumes) != 1:
        raise AvptError(f"--pre {path}: expected one 3D volume, found {len(volumes)}")
    return volumes[0]


def cmd_calibrate(args) -> int:
    from .engine.checkpoints import with_thresholds
    from .engine.device import resolve_device
    from .engine.evaluate import (
        CANDIDATES,
        MODALITY_NAMES,
        calibrate_thresholds,
        global_dice,
        merged_lesions,
        predict,
    )
    from .weights import default_prompts

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


def cmd_eval(args) -> int:
    import json

    from .engine.device import resolve_device
    from .engine.evaluate import evaluate, threshold_for

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-avpt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"napari-avpt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from .phantoms.formats import FORMATS

    p = sub.add_parser(
        "phantoms", help="write a synthetic dataset in INbreast, BUSI, Duke, BUS-BRA, mini-MIAS or images+masks layout"
    )
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--n", type=_positive_int, required=True, help="number of images (Duke: patients)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="new folder to create")
    p.add_argument("--size", type=_size, default=None, help="image size, e.g. 512x416 (Duke: 48x144x176)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("inspect", help="read files or DICOM folders and print what napari will show")
    p.add_argument("paths", nargs="+", type=Path)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("demo", help="open napari with a sample image and the plugin's widgets")
    p.add_argument("--sample", choices=SAMPLES, default="mammogram")
    p.add_argument("--image", type=Path, default=None, help="open this file or DICOM folder instead of a sample")
    p.add_argument(
        "--modality", type=_modality, default=None, help="with --image: MG, US or MR, when the file does not say"
    )
    p.add_argument("--screenshot", type=Path, default=None, help="segment, save a screenshot of the window, exit")
    p.add_argument("--tune-screenshot", type=Path, default=None, help="screenshot of the tuning dock mid-run, exit")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set to segment with (default: the shipped one)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("classical", help="lesion Dice of the non-learned threshold+blob segmenter on phantoms")
    p.add_argument(
        "--modality",
        nargs="+",
        type=_modality,
        default=["MG", "US", "MR"],
        help="MG, US, MR (or mammogram, ultrasound, MRI)",
    )
    p.add_argument("--n", type=_positive_int, default=30, help="phantoms per modality (half benign, half malignant)")
    p.add_argument("--seed", type=int, default=10_000, help="first seed (held out from training seeds)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_classical)

    from .model import METHODS
    from .model.config import CLASS_FROM, TUNE

    p = sub.add_parser("pretrain", help="self-supervised (MAE) pretraining of the backbone on phantoms")
    p.add_argument("--out", type=Path, required=True, help="encoder weights (.safetensors); a .json log beside")
    p.add_argument("--overwrite", action="store_true", help="replace --out and its log if they exist")
    p.add_argument("--minutes", type=_positive_float, default=60.0)
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="exactly this many steps instead of --minutes (same file on any machine)",
    )
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--img-size", type=_img_size, default=224)
    p.add_argument("--pool-mg", type=_nonnegative_int, default=400, help="mammograms in the image pool")
    p.add_argument("--pool-us", type=_nonnegative_int, default=400, help="ultrasound frames in the image pool")
    p.add_argument("--pool-mr", type=_nonnegative_int, default=40, help="MRI volumes in the pool (10 slices each)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=_nonnegative_int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("bench", help="measure speed, end-to-end time, anatomy priors and the classical baseline")
    parts = ("speed", "e2e", "whole", "priors", "classical", "probe", "methods", "fewshot", "ui")
    parts += ("real", "real-probe", "real-methods")
    p.add_argument("--part", nargs="+", choices=parts, default=["speed", "e2e", "priors"])
    p.add_argument("--quick", action="store_true", help="methods: a few-minute, tiny-sized run")
    p.add_argument("--seeds", type=_positive_int, default=3, help="methods: seeds per method")
    p.add_argument("--epochs", type=_positive_int, default=12, help="methods: epochs per run")
    p.add_argument("--n-train", type=_positive_int, default=30, help="methods: training phantoms per modality")
    p.add_argument("--n-test", type=_positive_int, default=15, help="methods: held-out phantoms per modality")
    p.add_argument("--backbone-weights", type=Path, default=None)
    p.add_argument("--report", type=Path, default=None, help="methods: write a markdown report (and a PNG plot)")
    p.add_argument("--repeats", type=_positive_int, default=20)
    p.add_argument("--n", type=_positive_int, default=8, help="phantoms per modality for priors / classical / whole")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set for e2e, whole and ui (default: shipped)")
    p.add_argument("--threads", type=_nonnegative_int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("--jobs", type=_positive_int, default=1, help="methods/fewshot: single-threaded runs side by side")
    p.add_argument(
        "--real-data",
        action="append",
        default=None,
        help="real: held-out data to score whole images on, [MODALITY:]PATH[:folds=..] (repeat)",
    )
    p.add_argument("--train-data", default=None, help="real-methods: data the methods train on (PATH[:folds=..])")
    p.add_argument("--quiet", action="store_true", help="real: no progress bar")
    p.add_argument("--probe-train", default=None, help="real-probe: data the probes learn on (PATH[:folds=..])")
    p.add_argument("--probe-test", default=None, help="real-probe: held-out data the probes are scored on")
    p.add_argument(
        "--probe-backbones",
        nargs="+",
        type=Path,
        default=None,
        help="real-probe: backbone weights to compare (a random backbone is always added)",
    )
    p.add_argument(
        "--random-methods",
        nargs="*",
        default=None,
        help="methods: those also run on a random backbone (default all; the flag alone: none)",
    )
    p.add_argument("--methods", nargs="+", default=None, help="methods: which to compare (default all)")
    p.add_argument(
        "--same-decoder",
        action="store_true",
        help="methods/fewshot: the baselines get A-VPT's modality-conditioned lesion decoder too, "
        "so that only the prompts differ",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export-backbone", help="the backbone of a full fine-tuning set, as weights to freeze under new prompts"
    )
    p.add_argument("prompts", type=Path, help="a set trained with --method full")
    p.add_argument("--out", type=Path, required=True, help="backbone weights (.safetensors)")
    p.add_argument("--recipe", default="", help="how it was made, kept in the file's metadata")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export_backbone)

    p = sub.add_parser("info", help="backbone, parameter counts and trainable share per method, device")
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--img-size", type=_img_size, default=224)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_info)

    def model_args(p):
        p.add_argument("--backbone-weights", type=Path, default=None, help="local .safetensors backbone weights")
        p.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, ...")

    data_help = (
        "phantoms:MODALITY:N[:SEED], or a dataset folder [MODALITY:]PATH[:folds=1,2] (INbreast, BUSI, Duke, "
        "BUS-BRA, mini-MIAS, or images/ + masks/ with its MODALITY); repeat to mix"
    )
    p = sub.add_parser("train", help="tune prompts (or a baseline) on a dataset or phantoms")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument(
        "--val-data",
        action="append",
        default=None,
        help="validation data (same forms as --data), instead of holding out --val-fraction of --data's patients",
    )
    p.add_argument(
        "--strong-augment",
        action="store_true",
        help="also zoom, rotate, shift, blur, add noise and lower the resolution (for real images of many scanners)",
    )
    p.add_argument("--method", choices=METHODS, default="avpt")
    p.add_argument("--epochs", type=_nonnegative_int, default=20)
    p.add_argument(
        "--out", type=Path, required=True, help="best checkpoint (.safetensors); .final and .stats.json beside"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out (and its .final and .stats.json)")
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--lr", type=_positive_float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=_fraction, default=0.2)
    p.add_argument("--patience", type=_positive_int, default=10)
    p.add_argument("--img-size", type=_img_size, default=224)
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--backbone-seed", type=int, default=0, help="seed of a random backbone (no weights given)")
    p.add_argument("--hub", action="store_true", help="download --backbone's pretrained weights (needs a network)")
    p.add_argument("--tissue", choices=("truth", "anatomy"), default="truth", help="tissue maps: known truth or priors")
    p.add_argument("--lambda-supcon", type=_nonnegative_float, default=0.1)
    p.add_argument("--lambda-attention", type=_nonnegative_float, default=0.1)
    p.add_argument(
        "--lambda-negative",
        type=_nonnegative_float,
        default=0.0,
        help="weight of the false-lesion term on lesion-free images",
    )
    p.add_argument("--init", type=Path, default=None, help="start from this prompt set (e.g. the shipped default)")
    p.add_argument(
        "--decoder-from",
        type=Path,
        default=None,
        help="start the lesion decoder from this set's (e.g. the full fine-tuning run that made --backbone-weights)",
    )
    p.add_argument(
        "--tune",
        choices=TUNE,
        default="all",
        help="what to train: all of the method's parameters, or (with --init) the class head alone, "
        "so that the lesions drawn and their thresholds stay as they were",
    )
    p.add_argument(
        "--class-from",
        choices=CLASS_FROM,
        default=None,
        help="what the class head reads beside CLS: the whole image, or the tokens under the drawn lesion "
        "(last block or the decoder's taps; the default for new sets). With --init, a different choice "
        "starts a new class head",
    )
    p.add_argument(
        "--fuse-channels",
        type=_positive_int,
        default=None,
        help="hidden units of the lesion decoder's full-resolution fuse (default 4; A-VPT has that many "
        "per modality, docs/model.md)",
    )
    p.add_argument("--threads", type=_nonnegative_int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--quiet", action="store_true")
    model_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("segment", help="segment images or volumes and write the results")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the results (made if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace results an earlier run left in --out")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write the lesions as a DICOM SEG referencing the DICOM series or image they segment (for a PACS)",
    )
    p.add_argument("--prompts", type=Path, default=None)
    p.add_argument(
        "--modality",
        type=_modality,
        default=None,
        help="MG, US or MR (mammogram, ultrasound, MRI), when the file does not say",
    )
    p.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help="lesion probability threshold (default: the prompt set's, calibrated per modality in training; else 0.5)",
    )
    p.add_argument(
        "--min-lesion-mm",
        type=_nonnegative_float,
        default=None,
        help="leave out lesions narrower than this many mm (equivalent diameter; pixel size known); "
        "default: MG 5, US 3, MR 5; 0: keep all",
    )
    p.add_argument(
        "--pre",
        type=Path,
        default=None,
        help="the pre-contrast volume (file or DICOM series folder) of the contrast MRI volumes given: "
        "the model then sees the subtraction post - pre (a DICOM study folder's own pre-contrast series is "
        "used without it)",
    )
    p.add_argument(
        "--no-pre",
        action="store_true",
        help="segment every volume alone, even when its folder holds the pre-contrast series",
    )
    model_args(p)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "calibrate",
        help="set a prompt set's lesion thresholds, per modality, on annotated data it was not trained on",
    )
    p.add_argument("--prompts", type=Path, default=None, help="prompt set (default: the shipped one)")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument("--out", type=Path, required=True, help="the prompt set with the new thresholds (may be --prompts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tissue", choices=("truth", "anatomy"), default="anatomy")
    model_args(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("eval", help="Dice, IoU, AUC and accuracy of a prompt set on data")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set (default: the shipped one)")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tissue",
        choices=("truth", "anatomy"),
        default="anatomy",
        help="tissue maps: the classical priors, as on a user's image (default), or a phantom's truth",
    )
    p.add_argument(
        "--threshold", type=_probability, default=None, help="lesion threshold (default: the prompt set's, else 0.5)"
    )
    p.add_argument("--json", action="store_true")
    model_args(p)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handle_termination()
    try:
        return args.func(args)
    except AvptError as e:
        print(f"napari-avpt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-avpt: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print("napari-avpt: terminated", file=sys.stderr)
        return int(e.code)


if __name__ == "__main__":
    sys.exit(main())
