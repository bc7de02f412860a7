"""docs/benchmarks.md from saved runs: the JSON files `napari-avpt bench
--json` writes, each with a `run` record (when, where, which command).

`napari-avpt bench --render RUN.json ... --report docs/benchmarks.md`
re-renders the page from them; nothing in it is typed by hand. Headline
first (real images against the targets), then each part's table with what
it measured, then the runs: date, machine, commit, command.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from .report import methods_markdown, probe_markdown

# DESIGN.md §6 and the issue that set them: what the shipped model must reach.
TARGETS = {
    "dice": 0.80,
    "malignant_auc": 0.88,
    "masses_found": 0.70,
    "false_lesions_per_image": 0.5,
    "normals_clean": 0.70,
    "share": 0.02,
    "tuned_dice": 0.75,  # tuning on 100 annotated images, within 10 minutes on 2 cores
}
# The order parts appear in the page.
PARTS = (
    "real",
    "real_tuning",
    "real_methods",
    "real_probe",
    "probe",
    "methods",
    "methods_same_decoder",
    "fewshot",
    "speed",
    "end_to_end",
    "ui",
)


def run_record(command: str, **files) -> dict:
    """What `bench --json` stores beside the figures: enough to say where
    they came from and to run them again."""
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_device()}",
        "commit": _commit(),
        "command": command,
        **{k: (Path(v).name if v else None) for k, v in files.items()},
    }


def _device() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # noqa: BLE001 - the record is informative only
        return "unknown device"


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _mark(value, key: str) -> str:
    """A figure and whether it meets its target."""
    target = TARGETS[key]
    if value is None:
        return "–"
    lower = key == "false_lesions_per_image"
    met = value <= target if lower else value >= target
    as_pct = key in ("masses_found", "normals_clean")
    shown, goal = (_pct(value), _pct(target)) if as_pct else (_f(value, 2), f"{target}")
    return f"{shown} ({'meets' if met else 'target'} {'≤' if lower else '≥'} {goal})"


def _table(columns: list[str], rows: list[list[str]], first_left: bool = True) -> list[str]:
    """A markdown table: figures right-aligned, the first column (a name) left."""
    align = ["---" if first_left and i == 0 else "---:" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _count(share, of) -> str:
    """A share of a count as both: 2 of 7 (29 %)."""
    if share is None or not of:
        return "–"
    return f"{round(share * of)} of {of} ({_pct(share)})"


def dataset_name(spec: str) -> str:
    low = spec.lower()
    for key, name in (("bus-bra", "BUS-BRA"), ("busbra", "BUS-BRA"), ("mias", "mini-MIAS"), ("busi", "BUSI")):
        if key in low:
            folds = spec.rsplit("folds=", 1)[1] if "folds=" in spec else None
            return name + (f" (fold {folds})" if folds else "")
    return Path(spec.split(":folds=")[0]).name


def _headline(parts: dict) -> list[str]:
    out = []
    real = parts.get("real")
    if real:
        report, run = real
        counts = run.get("parameters")
        if counts:
            share = counts["trainable"] / counts["total"]
            out.append(
                f"- **Trainable share** of `{run.get('prompts') or 'the set'}`: {counts['trainable']:,} parameters, "
                f"{100 * share:.2f} % ({'meets' if share < TARGETS['share'] else 'target'} < 2 %)."
            )
        for spec, r in report.items():
            m = r["summary"]
            line = f"- **{dataset_name(spec)}**, {m['n']} images, prompt set `{run.get('prompts') or 'default'}`: "
            if "masses" in m:
                line += (
                    f"masses found {_mark(m['masses_found'], 'masses_found')}, false lesions per image "
                    f"{_mark(m['false_lesions_per_image'], 'false_lesions_per_image')}, normals clean "
                    f"{_mark(m['normals_clean'], 'normals_clean')}."
                )
            else:
                line += (
                    f"lesion Dice {_mark(m['dice'], 'dice')}, benign-vs-malignant AUC "
                    f"{_mark(m['malignant_auc'], 'malignant_auc')}"
                )
                if m.get("bands"):  # no target: what lesion-free ultrasound gets
                    line += f", lesion-free bands beside the lesions left clean {_pct(m['bands_clean'])}"
                line += "."
            out.append(line)
    tuning = parts.get("real_tuning")
    if tuning:
        r = max(tuning[0]["rows"], key=lambda row: row["frames"])
        if r["frames"]:
            fast = r["seconds"] <= 600
            out.append(
                f"- **Tuning on {r['frames']} real annotated images** (the dock's setting, {r['epochs']} epochs): "
                f"lesion Dice {_mark(r['dice'], 'tuned_dice')} in {r['seconds'] / 60:.1f} min "
                f"({'within' if fast else 'over'} 10 min)."
            )
    methods = parts.get("real_methods")
    if methods:
        table = {e["method"]: e for e in methods[0]["table"]}
        a, v = table.get("avpt"), table.get("vpt-deep")
        if a and v and a.get("all_dice") and v.get("all_dice"):
            gap = a["all_dice"][0] - v["all_dice"][0]
            spread = max(a["all_dice"][1], v["all_dice"][1])
            verdict = (
                "ahead by more than a seed's spread"
                if gap > spread
                else ("behind" if gap < 0 else "ahead by less than a seed's spread: not a lead")
            )
            out.append(
                f"- **A-VPT vs VPT-deep**, same backbone and decoder, real ultrasound, {a['n_seeds']} seeds: "
                f"Dice {_f(a['all_dice'][0])} ± {_f(a['all_dice'][1])} vs {_f(v['all_dice'][0])} ± "
                f"{_f(v['all_dice'][1])}, {verdict}."
            )
        if a:
            out.append(
                f"- **Trainable share** of a new A-VPT set (the methods below): {a['trainable']:,} parameters, "
                f"{100 * a['share']:.2f} % "
                f"({'meets' if a['share'] < TARGETS['share'] else 'target'} < 2 %)."
            )
    return out


def _real_section(report: dict, run: dict) -> list[str]:
    out = [
        "## Real images, held-out patients",
        "",
        f"Prompt set `{run.get('prompts') or 'default'}`, whole images through the `Segmenter` at the set's "
        "thresholds and with its rules for what is drawn (`docs/model.md`), as `napari-avpt segment` runs them. "
        "Dice and IoU are per image with a lesion outline; the "
        "AUC is of p(malignant) / (p(benign) + p(malignant)) over benign and malignant images. mini-MIAS is "
        "scored on its circles: a mass is found when a drawn lesion overlaps its circle; a drawn lesion that "
        "overlaps no finding's circle is false.",
        "",
    ]
    rows = []
    for spec, r in report.items():
        m = r["summary"]
        rows.append(
            [dataset_name(spec), f"{m['n']}", _f(m["dice"]), _f(m["iou"]), _f(m["malignant_auc"])]
            + [_f(m["class_accuracy"]), _count(m.get("masses_found"), m.get("masses"))]
            + [_f(m.get("false_lesions_per_image"), 2), _count(m.get("normals_clean"), m.get("normals"))]
        )
    columns = ["data", "images", "lesion Dice", "IoU", "benign-vs-malignant AUC", "class accuracy"]
    out += _table(columns + ["masses found", "false lesions / image", "normals clean"], rows)
    out += [
        "| target | | ≥ 0.80 | | ≥ 0.88 | | ≥ 70 % | ≤ 0.5 | ≥ 70 % |",
        "",
    ]
    for spec, r in report.items():
        m = r["summary"]
        if m.get("bands"):
            out += [
                f"{dataset_name(spec)} has no lesion-free frame: the band of each frame beside its lesion "
                "(`data.lesion_free_box`), segmented as an image of its own, was left clean on "
                f"{_count(m['bands_clean'], m['bands'])} frames (lesion-free ultrasound, as near as these data "
                "come to it).",
                "",
            ]
    for spec, r in report.items():
        by_device = r["summary"].get("by_device")
        if by_device:
            out += [f"{dataset_name(spec)} by scanner (the AUC where a scanner has both classes):", ""]
            rows = [
                [d, f"{m['n']}", _f(m["dice"]), _f(m["iou"]), _f(m["malignant_auc"])]
                + [_count(m.get("bands_clean"), m.get("bands"))]
                for d, m in by_device.items()
            ]
            columns = ["scanner", "images", "lesion Dice", "IoU", "benign-vs-malignant AUC", "lesion-free bands clean"]
            out += _table(columns, rows) + [""]
    return out


def _real_methods_section(report: dict, run: dict) -> list[str]:
    modality = next((k[: -len("_dice")] for k in report["table"][0] if k.endswith("_dice") and k != "all_dice"), "US")
    return [
        "## Methods on real images, one backbone",
        "",
        f"Each method trained from scratch on {report['n_train']} annotated images of "
        f"{report.get('train_data', 'the training data')}, scored on {report.get('test_data', 'held-out patients')} "
        f"for {report['epochs']} epochs on backbone `{run.get('backbone') or 'default'}` (frozen except for `full`); "
        "mean ± sd over seeds. Train seconds are the wall time of one run and depend on how many ran "
        "side by side.",
        "",
        methods_markdown(report["table"], (modality,)),
    ]


def _real_tuning_section(report: dict, run: dict) -> list[str]:
    out = [
        "## The tuning dock's setting on real images",
        "",
        f"From `{report['init']}`, everything tuned on the first N annotated images of {report['train_data']} with "
        "the dock's settings (batch 8, learning rate 0.01, a fifth held out for validation and calibration), "
        f"scored on {report['test_data']}. Seconds are wall time from reading the images to the saved set, on "
        f"{run.get('machine', 'the machine of the run')}. Target: Dice ≥ 0.75 within 10 minutes on 100 images. "
        "A tuned set carries the starting set's class-from-shape fit and lesion choice over (`napari-avpt "
        "calibrate-class`, `calibrate-regions`), "
        "as the dock does."
        + (
            " The starting prompts are scored on the validation fifth first and kept, with their own "
            "thresholds, unless an epoch does better there (best epoch 0: the set itself came back)."
            if any("best_epoch" in r for r in report["rows"])
            else ""
        ),
        "",
    ]
    rows = [
        [f"{r['frames'] or '0 (the set itself)'}", f"{r.get('epochs', '–')}", f"{r.get('best_epoch', '–')}"]
        + [_f(r["seconds"], 0), _f(r["dice"]), _f(r["iou"]), _f(r["malignant_auc"])]
        for r in report["rows"]
    ]
    columns = ["images", "epochs", "best epoch", "seconds", "lesion Dice", "IoU", "benign-vs-malignant AUC"]
    return out + _table(columns, rows, first_left=False) + [""]


def _real_probe_section(report: dict, run: dict) -> list[str]:
    out = [
        "## Backbone gate: linear probes on real images",
        "",
        "Logistic regression on each backbone's frozen features: per 16-px patch, lesion or not; per image, "
        "benign or malignant from the mean token. Trained and scored on images of different patients (the "
        "run's command names the folds).",
        "",
    ]
    rows = [
        [name, _f(r["lesion_patch_auc"]), _f(r["class_auc"]), f"{r['n_train']} / {r['n_test']}"]
        for name, r in report.items()
    ]
    columns = ["backbone", "lesion-patch AUC", "benign-vs-malignant AUC", "train / test images"]
    return out + _table(columns, rows) + [""]


def _sizes(sizes: dict) -> str:
    """A part's sizes in words: per modality when they differ."""
    if sizes and all(isinstance(v, dict) for v in sizes.values()):
        return "; ".join(f"{m}: {_sizes(v)}" for m, v in sizes.items())
    words = []
    if "n_train" in sizes:
        words.append(f"{sizes['n_train']} training images")
    if "n_test" in sizes:
        words.append(f"{sizes['n_test']} held out")
    if "epochs" in sizes:
        words.append(f"{sizes['epochs']} epochs")
    if "seeds" in sizes:
        words.append("seeds " + ", ".join(map(str, sizes["seeds"])))
    if sizes.get("same_decoder"):
        words.append("every method with A-VPT's decoder")
    return ", ".join(words)


def _phantom_section(key: str, report: dict, run: dict) -> list[str]:
    titles = {
        "probe": "Phantoms: linear probes on the frozen backbone",
        "methods": "Phantoms: methods on the same data, backbone, epochs and seeds",
        "methods_same_decoder": "Phantoms: methods with one decoder for all",
        "fewshot": "Phantoms: few-shot, 20 annotated images of one modality",
    }
    out = [f"## {titles[key]}", ""]
    if key == "probe":
        return out + [
            f"Logistic regression on the frozen features of `{run.get('backbone') or 'the backbone'}` "
            f'("pretrained") and of a random one: per 16-px patch, lesion or not; per image, the class from the '
            f"mean token. Per modality: {_sizes(report['sizes'])}.",
            "",
            probe_markdown(report["result"]),
        ]
    out += [
        f'Per modality: {_sizes(report["sizes"])}; backbone `{run.get("backbone") or "random"}` ("pretrained"). '
        "Held-out phantoms; tissue maps from the classical priors, as on a user's "
        "image. Dice is over test images with a lesion; AUC is macro one-vs-rest over normal / benign / malignant. "
        "Phantoms are for comparing methods under control, not evidence about real images.",
        "",
        methods_markdown(report["table"]),
    ]
    return out


def _speed_section(report: list, run: dict) -> list[str]:
    out = [
        "## Speed: the model forward (CPU)",
        "",
    ]
    rows = [
        [f"{r['batch']}", _f(r["plain_vit_ms"], 1), _f(r["avpt_ms"], 1), _f(r["ratio"], 2)]
        + [_f(r["avpt_with_attention_ms"], 1)]
        for r in report
    ]
    columns = ["batch", "plain frozen ViT ms/image", "A-VPT ms/image", "ratio", "with attention maps ms"]
    return out + _table(columns, rows) + [""]


def _end_to_end_section(r: dict, run: dict) -> list[str]:
    out = [
        "## End to end: file to result layers (CPU)",
        "",
        f"Mammogram 512 x 416: {r['mammogram_512_s']:.2f} s; 3000 x 2500: {r['mammogram_3000_s']:.2f} s; "
        f"64-slice MRI: {r['volume_64_slices_s']:.1f} s; peak memory {r['peak_memory_mb']:.0f} MB.",
        "",
    ]
    big = r.get("big_volume")
    if big:
        out += [
            f"A {' x '.join(map(str, big['shape']))} MRI volume (NIfTI) read and segmented in a fresh process: "
            f"{big['seconds']:.1f} s, peak memory {big['peak_memory_mb']:.0f} MB.",
            "",
        ]
    return out


def _ui_section(report: dict, run: dict) -> list[str]:
    out = [
        "## napari: Segment lesion, as a user meets it",
        "",
        "The model loads in the background when the dock opens; the first click comes 2 s later. A stall is the "
        "longest time napari's event loop went without running (a 10 ms timer): the first run on an image adds "
        "its result layers, a later run updates them.",
        "",
    ]
    rows = [
        [sample, _f(r.get("first_click_s"), 2), _f(r["click_to_layers_s"], 2)]
        + [_f(r.get("first_stall_ms", r["longest_ui_stall_ms"]), 0), _f(r.get("later_stall_ms"), 0)]
        for sample, r in report.items()
    ]
    columns = ["sample", "first click to layers s", "later clicks s", "stall ms, first run", "stall ms, later run"]
    return out + _table(columns, rows) + [""]


# How each part is shown; the phantom parts share `_phantom_section`.
SECTIONS = {
    "real": _real_section,
    "real_tuning": _real_tuning_section,
    "real_methods": _real_methods_section,
    "real_probe": _real_probe_section,
    "speed": _speed_section,
    "end_to_end": _end_to_end_section,
    "ui": _ui_section,
}


def render(runs: list[tuple[str, dict]]) -> str:
    """The page from (file name, saved run) pairs; a part saved in several
    runs is shown from the last one given."""
    parts: dict[str, tuple] = {}
    for _name, saved in runs:
        run = saved.get("run", {})
        for key in PARTS:
            if key in saved:
                parts[key] = (saved[key], run)
    names = " ".join(f"docs/benchmarks/{name}" for name, _ in runs)
    out = [
        "# Benchmarks",
        "",
        f"Written by `napari-avpt bench --render {names} --report docs/benchmarks.md` from the saved runs "
        "listed at the end; each run's command measures it again.",
        "",
    ]
    headline = _headline(parts)
    if headline:
        out += ["## Headline", "", *headline, ""]
    for key in PARTS:
        if key not in parts:
            continue
        report, run = parts[key]
        section = SECTIONS.get(key)
        out += section(report, run) if section else _phantom_section(key, report, run)
    out += ["## The runs", ""]
    for name, saved in runs:
        run = saved.get("run", {})
        shown = ", ".join(k.replace("_", " ") for k in PARTS if k in saved)
        commit = f", commit {run['commit']}" if run.get("commit") else ""
        out += [
            f"**{name}** ({shown}): {run.get('date', 'undated')}, {run.get('machine', 'machine not recorded')}"
            f"{commit}.",
            "",
            f"    {run.get('command', 'command not recorded')}",
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"
