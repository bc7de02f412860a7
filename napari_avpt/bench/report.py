"""Markdown and plots from a benchmark's JSON."""

from __future__ import annotations

import numpy as np


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

    from ..io.files import atomic_file

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
