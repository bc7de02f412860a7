"""Measurements behind the numbers of DESIGN.md §6 and the benchmark
documents, as functions the `napari-avpt bench` command calls: speed,
scores on phantoms, the methods compared, real images (`real`), the UI."""

from __future__ import annotations

from .methods import compare_methods, phantom_set, run_tasks, summarize_methods
from .phantom_scores import classical_dice, prior_dice, segmenter_dice
from .report import methods_markdown, methods_plot, probe_markdown
from .speed import end_to_end, model_speed, volume_peak_memory
from .ui import ui_responsiveness

__all__ = [
    "classical_dice",
    "compare_methods",
    "end_to_end",
    "methods_markdown",
    "methods_plot",
    "model_speed",
    "phantom_set",
    "prior_dice",
    "probe_markdown",
    "run_tasks",
    "segmenter_dice",
    "summarize_methods",
    "ui_responsiveness",
    "volume_peak_memory",
]
