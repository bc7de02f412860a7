"""`bench` and `classical`: the benchmark parts, their reports and JSON."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import AvptError
from ..io.files import check_new_file


def cmd_bench(args) -> int:
    import json

    import torch

    from .. import bench

    for option, path in (("--json", args.json), ("--report", args.report)):
        if path is not None:
            check_new_file(path, overwrite=True, option=option)
    if args.render:
        return _render(args)
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
        prompts = _needed_prompts(args, "whole")
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
        from ..scoring.probe import probe_gate

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
        prompts = _needed_prompts(args, "ui")
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
    if "real-tuning" in args.part:
        report["real_tuning"] = _bench_real_tuning(args)
    if args.report:
        _write_bench_report(args, report, weights)
    if args.json:
        from ..bench.render import run_record
        from ..io.files import write_text_atomic

        report["run"] = run_record(_command(args), prompts=_bench_prompts(args), backbone=weights)
        if "real" in report:  # the share of the set scored, for the headline
            from ..engine import load_model

            trainable, total = load_model(_bench_prompts(args))[0].parameter_counts()
            report["run"]["parameters"] = {"trainable": trainable, "total": total}
        write_text_atomic(args.json, json.dumps(report, indent=1, default=str))
    return 0


def _command(args) -> str:
    """The command as typed, for the record."""
    return "napari-avpt " + " ".join(getattr(args, "argv", sys.argv[1:]))


def _render(args) -> int:
    """`bench --render RUN.json ... --report PAGE.md`: the page from saved runs."""
    import json

    from ..bench.render import render
    from ..io.files import write_text_atomic

    if args.report is None:
        raise AvptError("bench --render needs --report PAGE.md (where to write the page)")
    runs = []
    for path in args.render:
        try:
            saved = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise AvptError(f"cannot read the saved run {path}: {e}") from None
        if not isinstance(saved, dict):
            raise AvptError(f"{path} is not a saved benchmark run (a JSON object written by bench --json)")
        runs.append((Path(path).name, saved))
    write_text_atomic(args.report, render(runs))
    print(f"wrote {args.report} from {len(runs)} saved run{'s' if len(runs) != 1 else ''}")
    return 0


def _bench_real(args) -> dict:
    from tqdm import tqdm

    from ..bench.real import real_benchmark

    prompts = _bench_prompts(args)
    if prompts is None or not args.real_data:
        raise AvptError("bench --part real needs --real-data SPEC (and --prompts FILE or the shipped default)")
    bars = {}

    def progress(p):
        if p.label not in bars:  # one bar at a time: the previous spec's is done
            for bar in bars.values():
                bar.close()
            bars[p.label] = tqdm(
                total=p.total, desc=f"scoring {p.label}", unit="image", leave=False, disable=args.quiet
            )
        bars[p.label].update(p.done - bars[p.label].n)

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
    from ..bench.real import real_probe_gate

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
    from .. import bench
    from ..bench.real import classical_row, compare_methods_real
    from ..bench.render import dataset_name
    from ..engine.data import open_folder_spec
    from ..model import METHODS

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
    return {
        "rows": rows,
        "table": table,
        "n_train": args.n_train,
        "epochs": args.epochs,
        "train_data": dataset_name(args.train_data),
        "test_data": dataset_name(args.real_data[0]),
    }


def _bench_real_tuning(args) -> dict:
    from ..bench.real import tuning_on_real
    from ..bench.render import dataset_name

    init = _bench_prompts(args)
    if init is None or not (args.train_data and args.real_data and len(args.real_data) == 1):
        raise AvptError(
            "bench --part real-tuning needs --train-data SPEC, one --real-data SPEC (held out) and --prompts SET "
            "(or the shipped default) to start from"
        )

    def show(p):
        row = p.metrics
        print(
            f"{row['frames']} images, {row['epochs']} epochs: {row['seconds']:.0f} s; lesion Dice {_fmt(row['dice'])}, "
            f"benign-vs-malignant AUC {_fmt(row['malignant_auc'])}"
        )

    rows = tuning_on_real(init, args.train_data, args.real_data[0], args.frames, args.epochs, progress=show)
    return {
        "rows": rows,
        "init": Path(init).name,
        "train_data": dataset_name(args.train_data),
        "test_data": dataset_name(args.real_data[0]),
    }


# --quick: every method and part runs, on tiny data, in about a minute.
QUICK_SIZES = {"seeds": (0,), "n_train": 4, "n_test": 3, "epochs": 1, "img_size": 64}


def _bench_prompts(args):
    from ..io.weights import default_prompts

    return args.prompts or default_prompts()


def _needed_prompts(args, part: str):
    """The prompt set a part segments with; one line when there is none."""
    prompts = _bench_prompts(args)
    if prompts is None:
        raise AvptError(f"bench --part {part} needs --prompts FILE (or shipped default weights)")
    return prompts


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _bench_backbone(args):
    """--backbone-weights, else the shipped default backbone, else None (random)."""
    from ..io.weights import DEFAULT_BACKBONE, read_checksums, verified, weights_dir

    if args.backbone_weights is not None:
        return args.backbone_weights
    folder = weights_dir()
    if folder is not None and DEFAULT_BACKBONE in read_checksums(folder):
        return verified(DEFAULT_BACKBONE, folder)
    return None


def _progress_row(p) -> None:
    row = p.metrics
    print(f"  {row['backbone']:10s} {row['method']:16s} seed {row['seed']}: Dice {row['all']['dice']}", flush=True)


def _bench_methods(args, weights) -> dict:
    from .. import bench

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
    from .. import bench

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
    """The page of this run alone, as `--render` writes it from saved runs."""
    from ..bench.render import render, run_record
    from ..io.files import write_text_atomic

    run = {**report, "run": run_record(_command(args), prompts=_bench_prompts(args), backbone=weights)}
    write_text_atomic(args.report, render([(Path(args.report).with_suffix(".json").name, run)]))
    print(f"wrote {args.report}")


def cmd_classical(args) -> int:
    from ..bench import classical_dice

    for modality, r in classical_dice(args.modality, args.n, args.seed).items():
        print(f"{modality}: classical threshold+blob lesion Dice {r['dice']:.3f} +- {r['sd']:.3f} (n={r['n']})")
    return 0
