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
