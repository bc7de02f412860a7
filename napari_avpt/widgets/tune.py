"""Dock widget "A-VPT: Tune prompts": tune the prompts on the user's own
annotations (painted Labels layers, or a dataset folder) in a worker thread,
with progress, a live loss / Dice plot, a Stop that keeps the best prompts,
and a named, re-loadable prompt set in the user's library. The user's
layers are only read, never changed.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from ..engine.progress import Cancelled, Progress
from ..engine.prompt_library import import_prompt_set, list_prompt_sets
from ..errors import AvptError
from ..model.config import CLASS_NAMES, modality_code
from .phases import pre_contrast_of
from .segment import MODALITY_LABELS

NEW_PROMPTS = "new (untrained)"
# What a run trains: the class head alone keeps what the set draws (and its
# calibrated lesion thresholds), for correcting the finding class only.
TUNE_CHOICES = [("prompts and heads", "all"), ("finding class only", "class-head")]


class _Relay(QObject):
    event = Signal(object)  # a Progress, from the worker


def layer_pairs(pairs, modality_choice: str) -> list[tuple]:
    """The engine's in-memory pairs from (image layer, labels layer, class)."""
    out = []
    for image, labels, label in pairs:
        modality = (
            modality_code(image.metadata.get("modality")) if modality_choice == "from the image" else modality_choice
        )
        out.append((image.name, image.data, labels.data, label, modality))
    return out


class TuneWidget(Container):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = create_widget(annotation=napari.layers.Image, label="image")
        self.labels = create_widget(annotation=napari.layers.Labels, label="annotation")
        self.finding = ComboBox(choices=list(CLASS_NAMES), value="malignant", label="finding")
        self.add_pair = PushButton(text="Add pair")
        self.clear_pairs = PushButton(text="Clear pairs")
        self.pairs_label = Label(value="no pairs yet", label="pairs")
        self.folder = FileEdit(mode="d", label="or dataset folder", value="")
        self.modality = ComboBox(choices=MODALITY_LABELS, label="modality")
        self.start_from = ComboBox(choices=self._start_choices, label="start from")
        self.what = ComboBox(choices=TUNE_CHOICES, value="all", label="train")
        self.epochs = SpinBox(value=20, min=1, max=500, label="epochs")
        # 0: none; else as many of the epochs as fit (TrainConfig.minutes)
        self.minutes = FloatSpinBox(value=0.0, min=0.0, max=600.0, step=0.5, label="time budget (min)")
        self.lr = FloatSpinBox(value=1e-2, min=1e-5, max=1.0, step=1e-3, label="learning rate")
        self.val_fraction = FloatSpinBox(value=0.2, min=0.0, max=0.5, step=0.05, label="validation share")
        self.device = ComboBox(choices=["auto", "cpu", "cuda"], label="device")
        self.params = Label(value="", label="trainable")
        self.start = PushButton(text="Start tuning")
        self.stop = PushButton(text="Stop (keep best)", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="", label="status")
        self.name = LineEdit(value="my prompts", label="name")
        self.save = PushButton(text="Save to library", enabled=False)
        self.import_button = PushButton(text="Import…")
        self.export_button = PushButton(text="Export…")
        self.extend(
            [
                self.image,
                self.labels,
                self.finding,
                self.add_pair,
                self.clear_pairs,
                self.pairs_label,
                self.folder,
                self.modality,
                self.start_from,
                self.what,
                self.epochs,
                self.minutes,
                self.lr,
                self.val_fraction,
                self.device,
                self.params,
                self.start,
                self.stop,
                self.progress,
                self.status,
                self.name,
                self.save,
                self.import_button,
                self.export_button,
            ]
        )
        self.pairs: list[tuple] = []
        self.history: list[dict] = []
        self.worker = None
        self.result = None
        self._stop = threading.Event()
        self._tmp = Path(tempfile.mkdtemp(prefix="napari-avpt-tune-"))
        self._relay = _Relay()
        self._relay.event.connect(self._on_event)
        # Closing the dock (or the viewer) mid-run stops the training; what
        # the worker still reports is dropped.
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)
        self._figure, self._axes, self._canvas = self._make_plot()
        self.add_pair.changed.connect(self._add_pair)
        self.clear_pairs.changed.connect(self._clear_pairs)
        self.start.changed.connect(self.tune)
        self.stop.changed.connect(self._stop.set)
        self.save.changed.connect(self.save_prompts)
        self.import_button.changed.connect(self._import)
        self.export_button.changed.connect(self._export)
        self._counts: dict[str, int] = {}
        self._count_cache: dict = {}
        self._counting = None
        self.start_from.changed.connect(self._update_params)
        self.what.changed.connect(self._show_params)  # counts known: no model to rebuild
        self._update_params()

    def _make_plot(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(3.2, 2.2), tight_layout=True)
        axes = figure.add_subplot(111)
        axes.set_xlabel("epoch")
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(160)
        self.native.layout().addWidget(canvas)
        return figure, axes, canvas

    def _start_choices(self, _widget=None):
        return [(NEW_PROMPTS, None)] + [(label, str(path)) for label, path in list_prompt_sets()]

    def _update_params(self, *_):
        """Count what each choice would train, in a worker: it builds the
        whole model (the backbone's checksum included), too slow for the GUI
        thread. Counts are kept per 'start from' choice."""
        start = self.start_from.value
        if start in self._count_cache:
            self._counts = self._count_cache[start]
            self._show_params()
            return
        # The engine (torch, timm) is imported on the GUI thread (see segment.py).
        from ..engine.train import TUNE, tuned_parameter_count

        self.params.value = "counting…"

        @thread_worker(start_thread=False, ignore_errors=True)
        def count():
            try:
                model, _ = self._build(start)
            except AvptError as e:
                return start, None, str(e)
            counts = {t: tuned_parameter_count(model, t) for t in TUNE} | {"total": model.parameter_counts()[1]}
            return start, counts, ""

        def shown(outcome):
            if self._closed:
                return
            start, counts, error = outcome
            if counts is not None:
                self._count_cache[start] = counts
            if start != self.start_from.value:
                return  # the choice changed meanwhile; its own count follows
            self._counts = counts or {}
            if counts is None:
                self.params.value = error
            else:
                self._show_params()

        worker = count()
        worker.returned.connect(shown)
        worker.errored.connect(lambda e: None if self._closed else setattr(self.params, "value", f"cannot count: {e}"))
        self._counting = worker  # kept alive until it reports
        worker.start()

    def _show_params(self, *_):
        if self._counts:
            trainable, total = self._counts[self.what.value], self._counts["total"]
            self.params.value = f"{trainable:,d} of {total:,d} ({100 * trainable / total:.2f} %)"

    def _build(self, start: str | None):
        """The model to tune: from the prompt set `start` (the 'start from'
        choice, read on the GUI thread), or new A-VPT prompts on the shipped
        backbone (a seeded random one when none is shipped)."""
        from ..engine import backbone_meta, build_model, load_model
        from ..engine.lesion_class import carried_meta
        from ..io.weights import DEFAULT_BACKBONE, read_checksums, verified, weights_dir
        from ..model import ModelConfig

        if start:
            model, meta = load_model(start)
            keys = {k: meta[k] for k in ("backbone_weights", "backbone_seed") if k in meta}
            keys.update(carried_meta(meta, Path(start).name))
            return model, {"meta": keys, "sha": meta["backbone_sha256"], "thresholds": meta["thresholds"]}
        folder = weights_dir()
        weights = None
        if folder is not None and DEFAULT_BACKBONE in read_checksums(folder):
            weights = verified(DEFAULT_BACKBONE, folder)
        model, sha = build_model(ModelConfig(method="avpt"), weights)
        return model, {"meta": backbone_meta(weights, 0), "sha": sha, "thresholds": None}

    # -- pairs -----------------------------------------------------------

    def _add_pair(self, *_):
        if self.image.value is None or self.labels.value is None:
            show_error("choose an image layer and the Labels layer you painted on it")
            return
        self.pairs.append((self.image.value, self.labels.value, self.finding.value))
        self._show_pairs()

    def _clear_pairs(self, *_):
        self.pairs = []
        self._show_pairs()

    def _show_pairs(self):
        text = "; ".join(f"{i.name} + {lab.name} ({c})" for i, lab, c in self.pairs)
        self.pairs_label.value = text or "no pairs yet"

    # -- training --------------------------------------------------------

    def tune(self, *_):
        if self.worker is not None:
            return
        from ..engine.data import check_pairs, dataset_examples, pair_examples
        from ..engine.train import TrainConfig, train

        folder = str(self.folder.value) if str(self.folder.value) not in ("", ".") else None
        # An images + masks folder does not say its modality: the dock's choice does.
        folder_modality = None if self.modality.value == "from the image" else self.modality.value
        # Snapshot the layers' data now: the user may keep painting while training runs.
        pairs = [
            (n, np.array(i), np.array(lab), c, m) for n, i, lab, c, m in layer_pairs(self.pairs, self.modality.value)
        ]
        # A contrast MRI volume whose pre-contrast phase is open is taught
        # as the Segment widget will show it: on its subtraction too.
        phases = {image.name: pre_contrast_of(self.viewer.layers, image) for image, _, _ in self.pairs}
        pre = {name: np.array(layer.data) for name, layer in phases.items() if layer is not None}
        try:
            if not pairs and folder is None:
                raise AvptError("add at least one image + annotation pair, or choose a dataset folder")
            if self.what.value == "class-head" and not self.start_from.value:
                raise AvptError("'finding class only' keeps a prompt set's lesions: choose one in 'start from'")
            check_pairs(pairs)  # cheap: mistakes are reported at once, before any work
        except AvptError as e:
            show_error(str(e))
            return
        cfg = TrainConfig(
            epochs=self.epochs.value,
            lr=self.lr.value,
            val_fraction=self.val_fraction.value,
            device=self.device.value,
            batch_size=8,
            tune=self.what.value,
            score_start=bool(self.start_from.value),  # a set's prompts stay unless an epoch beats them
            minutes=self.minutes.value or None,
        )
        out = self._tmp / f"run-{int(time.time() * 1000)}.safetensors"
        relay, stop = self._relay, self._stop
        start_from = self.start_from.value  # widgets are read here, on the GUI thread, never in the worker
        stop.clear()
        self.history = []

        @thread_worker(start_thread=False, ignore_errors=True)
        def run():
            # Everything slow (the model, the priors of every image, training) runs here.
            try:
                model, info = self._build(start_from)
                if folder is not None:
                    from ..io.datasets import is_image_mask_folder, open_dataset

                    plain = is_image_mask_folder(Path(folder))
                    dataset = open_dataset(folder, modality=folder_modality if plain else None)
                    examples = dataset_examples(
                        dataset,
                        model.cfg.img_size,
                        tissue="anatomy",
                        progress=relay.event.emit,
                        cancel=stop.is_set,
                    )
                else:
                    examples = pair_examples(pairs, model.cfg.img_size, pre=pre)
                relay.event.emit(Progress("train", 0, len(examples), unit="example"))
                return train(
                    model,
                    examples,
                    cfg,
                    out,
                    info["sha"],
                    progress=relay.event.emit,
                    cancel=stop.is_set,
                    extra_meta=info["meta"],
                    thresholds=info["thresholds"],
                )
            except Cancelled as e:  # stopped: a run's best set so far is kept, in e.result
                return e.result if e.result is not None else ("cancelled", str(e))
            except AvptError as e:
                return ("error", str(e))

        self.worker = run()
        self.worker.returned.connect(self._finished_training)
        self.worker.errored.connect(self._failed_training)
        self.worker.finished.connect(self._cleanup)
        self.start.enabled, self.stop.enabled, self.save.enabled = False, True, False
        self.progress.max, self.progress.value = cfg.epochs, 0
        self.status.value = "preparing the examples…"
        self.worker.start()

    def _on_destroyed(self, *_):
        self._closed = True
        self._stop.set()

    def _on_event(self, p: Progress):
        if self._closed:
            return
        if p.unit == "example":
            self.status.value = f"tuning on {p.total} examples…"
            return
        if p.task == "prepare":  # a dataset folder's images, before the first step (cached for next time)
            self.status.value = f"preparing image {p.done} of {p.total}…"
            return
        if p.unit == "step":
            self.progress.max = max(p.epochs or self.progress.max, 1)  # a time budget sets the epochs as it goes
            done = (p.epoch - 1) + p.done / max(p.total, 1)
            eta = p.seconds / max(done, 1e-6) * (self.progress.max - done)
            self.status.value = f"epoch {p.epoch}, loss {p.loss:.3f}, about {eta:.0f} s left"
            return
        self.history.append(p)
        self.progress.max = max(p.epochs or self.progress.max, 1)
        self.progress.value = p.epoch
        epochs = [e.epoch for e in self.history]
        self._axes.clear()
        self._axes.plot(epochs, [e.loss for e in self.history], label="train loss")
        dice = [e.metrics.get("dice") for e in self.history]
        if any(d is not None for d in dice):
            self._axes.plot(epochs, [np.nan if d is None else d for d in dice], label="val Dice")
        self._axes.set_xlabel("epoch")
        self._axes.legend(fontsize=7)
        self._canvas.draw_idle()

    def _finished_training(self, result):
        if self._closed:
            return
        if isinstance(result, tuple):  # nothing trained: an error, or stopped while preparing
            kind, message = result
            (show_info if kind == "cancelled" else show_error)(message)
            self.status.value = "stopped" if kind == "cancelled" else ""
            return
        self.result = result
        dice = result.best_metrics.get("dice")
        best = "n/a" if dice is None else f"{dice:.3f}"
        self.status.value = f"{result.status}: best epoch {result.best_epoch}, validation Dice {best}"
        self.save.enabled = result.best_path is not None and result.best_path.exists()

    def _failed_training(self, error):
        """A failure nobody foresaw (a bug): told, not re-raised into napari."""
        if not self._closed:
            show_error(f"tuning failed: {error}")
            self.status.value = ""

    def _cleanup(self):
        self.worker = None
        if self._closed:
            return
        self.start.enabled, self.stop.enabled = True, False

    # -- library ---------------------------------------------------------

    def save_prompts(self, *_):
        if self.result is None or self.result.best_path is None:
            show_error("nothing to save yet: tune first")
            return
        try:
            path = import_prompt_set(self.result.best_path, self.name.value)
        except AvptError as e:
            show_error(str(e))
            return
        show_info(f"saved prompt set '{path.stem}'")
        self.start_from.reset_choices()
        self.status.value = f"saved as '{path.stem}'"

    def _import(self, *_):
        from qtpy.QtWidgets import QFileDialog

        source, _ = QFileDialog.getOpenFileName(self.native, "Import prompt set", "", "Prompt sets (*.safetensors)")
        if source:
            try:
                import_prompt_set(source)
            except AvptError as e:
                show_error(str(e))
            self.start_from.reset_choices()

    def _export(self, *_):
        from qtpy.QtWidgets import QFileDialog

        from ..engine.prompt_library import export_prompt_set

        if not self.start_from.value:
            show_error("choose a prompt set in 'start from' to export")
            return
        target, _ = QFileDialog.getSaveFileName(self.native, "Export prompt set", "", "Prompt sets (*.safetensors)")
        if target:
            export_prompt_set(self.start_from.value, target)
