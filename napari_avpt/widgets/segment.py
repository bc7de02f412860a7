"""Dock widget "A-VPT: Segment lesion": layers in, one call into the engine
in a worker thread, layers out.

The result layers (lesions, tissue, one attention map per tissue prompt and
the lesion's) take the image's scale, translate and affine. Running again
on the same image replaces that image's earlier results, except a lesions
layer the user has painted on: it is kept, and the new result comes as a
new layer.
"""

from __future__ import annotations

import threading
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton, Table, create_widget
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from ..engine.prompt_library import list_prompt_sets, user_prompt_dir
from ..errors import AvptError
from ..model.config import MODALITY_WORDS, modality_code
from .display import TISSUE_LEGEND_HTML
from .memory import freeze_long_lived
from .phases import pre_contrast_of, same_grid_volumes
from .result_layers import fingerprint, lesion_table, result_layers, result_summary, update_layer
from .sensitivity import sensitivity_fields

MODALITY_CHOICES = ["from the image", "MG", "US", "MR"]
# What the combo box shows for each choice: the code and the word.
MODALITY_LABELS = [(c if c not in MODALITY_WORDS else f"{c} ({MODALITY_WORDS[c]})", c) for c in MODALITY_CHOICES]
SHORTCUT = "Control-Shift-L"
STEP_GAP_MS = 5


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread."""

    progress = Signal(int, int)


class SegmentWidget(Container):
    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._extra_prompts: list[Path] = []
        self.image = create_widget(annotation=napari.layers.Image, label="image")
        self.modality = ComboBox(choices=MODALITY_LABELS, label="modality")
        self.pre = ComboBox(
            choices=self._pre_choices,
            label="pre-contrast",
            tooltip="The pre-contrast volume of a contrast MRI: the model then sees the subtraction "
            "(post - pre), in which lesions enhance and glandular tissue mostly does not.",
        )
        self.prompts = ComboBox(choices=self._prompt_choices, label="prompt set")
        # Sensitivity, as a reader sets it, for one run (`sensitivity`).
        self.threshold, self.min_size, self.min_peak, self.weak = sensitivity_fields()
        self.run_button = PushButton(text=f"Segment lesion ({SHORTCUT.replace('Control', 'Ctrl')})")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress", visible=False)
        self.result = Label(value="", label="result")
        self.result.native.setWordWrap(True)  # the class and its probabilities, in full
        # One row per lesion; choosing one centres the view on it.
        self.lesions = Table(value=lesion_table([], False, 2), label="lesions", visible=False)
        self.lesions.native.verticalHeader().setVisible(False)
        self.lesions.read_only = True
        self.lesions.native.setSelectionBehavior(self.lesions.native.SelectionBehavior.SelectRows)
        self.lesions.native.itemSelectionChanged.connect(self._lesion_chosen)
        self.legend = Label(value=TISSUE_LEGEND_HTML, label="tissue")
        self.seg_button = PushButton(text="Save lesions as DICOM SEG…", visible=False)
        self.seg_button.changed.connect(self._ask_dicom_seg)
        self._lesion_rows: list = []
        self._lesion_source = None
        self.extend(
            [
                self.image,
                self.modality,
                self.pre,
                self.prompts,
                self.threshold,
                self.min_size,
                self.min_peak,
                self.weak,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.result,
                self.lesions,
                self.seg_button,
                self.legend,
            ]
        )
        # The pre-contrast choice follows the layers until the user makes one.
        self._pre_by_hand = False
        self.pre.native.activated.connect(lambda *_: setattr(self, "_pre_by_hand", True))
        self.image.changed.connect(self._new_image)
        self._pick_pre()
        self.run_button.changed.connect(self.segment)
        self.cancel_button.changed.connect(self.cancel)
        self._cancel = threading.Event()
        # Closing the dock (or the viewer, which closes it) mid-run cancels
        # the run; what it still reports is dropped, never shown on a
        # widget that is gone.
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)
        self._models: dict[Path, tuple[float, object]] = {}  # prompt file -> (mtime, Segmenter)
        self._models_lock = threading.Lock()
        self._preloading = None
        QTimer.singleShot(0, self._preload)  # once the dock is on screen
        self.prompts.changed.connect(self._preload)
        self.worker = None
        self._steps: list = []
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        # New prompt sets (saved by the tuning dock or imported) appear at once.
        self._watcher = QFileSystemWatcher([str(user_prompt_dir())])
        self._watcher.directoryChanged.connect(lambda _: self.prompts.reset_choices())
        napari_viewer.bind_key(SHORTCUT, lambda _viewer: self.segment(), overwrite=True)

    def _prompt_choices(self, _widget=None):
        extra = [(f"{p.stem} ({p.parent})", str(p)) for p in self._extra_prompts]
        return [(label, str(path)) for label, path in list_prompt_sets()] + extra

    def _pre_choices(self, _widget=None):
        """'none', then the other 3D image layers on the chosen volume's grid."""
        return [("none", None)] + [(o.name, o.name) for o in same_grid_volumes(self.viewer.layers, self.image.value)]

    def _new_image(self, _value=None) -> None:
        self._pre_by_hand = False
        self._pick_pre()

    def _pick_pre(self) -> None:
        """Offer the image's pre-contrast phase, chosen when a layer says it
        is one (`phases.pre_contrast_of`)."""
        self.pre.reset_choices()
        self.pre.visible = any(c is not None for c in self.pre.choices)
        pre = pre_contrast_of(self.viewer.layers, self.image.value)
        self.pre.value = None if pre is None else pre.name

    def reset_choices(self, *args) -> None:
        # Layers came or went: keep a pre-contrast choice the user made if it
        # is still there, else pick again (the phase may have just opened).
        super().reset_choices(*args)
        if getattr(self, "_pre_by_hand", False) and self.pre.value in self.pre.choices:
            self.pre.visible = any(c is not None for c in self.pre.choices)
        else:
            self._pick_pre()

    def add_prompt_file(self, path) -> None:
        """Offer a prompt set that is not in the library (e.g. given on the
        command line) and select it."""
        path = Path(path).resolve()
        if path not in self._extra_prompts:
            self._extra_prompts.append(path)
        self.prompts.reset_choices()
        self.prompts.value = str(path)

    # -- running ---------------------------------------------------------

    def _segmenter(self, path: Path):
        """The model of a prompt set, loaded once (again when the file
        changes); from worker threads, one at a time."""
        from ..engine import load_model
        from ..engine.infer import Segmenter

        with self._models_lock:
            mtime = path.stat().st_mtime
            cached = self._models.get(path)
            if cached is None or cached[0] != mtime:
                model, meta = load_model(path)
                self._models[path] = (mtime, Segmenter.for_set(model, meta))
            return self._models[path][1]

    def _preload(self, *_):
        """Load the chosen prompt set's model in the background as soon as
        the dock is open (or the choice changes), so that the first click
        only segments. A failure is left for that click to report."""
        if self.prompts.value is None or self.worker is not None:
            return
        # The engine (torch, timm) is imported here, on the GUI thread (see segment()).
        from ..engine import load_model  # noqa: F401
        from ..engine.infer import Segmenter  # noqa: F401

        path = Path(self.prompts.value)

        @thread_worker(start_thread=False, ignore_errors=True)
        def load():
            try:
                self._segmenter(path)
            except (AvptError, OSError, ValueError):
                pass

        self._preloading = load()
        self._preloading.finished.connect(freeze_long_lived)  # the model's objects live on: see memory.py
        self._preloading.start()

    def _inputs(self):
        layer = self.image.value
        if layer is None:
            raise AvptError("open an image first (File > Open, or a sample from File > Open Sample)")
        if layer.rgb:
            raise AvptError(f"'{layer.name}' is a colour (RGB) image; A-VPT needs a gray image")
        data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
        if data.ndim not in (2, 3):
            raise AvptError(f"'{layer.name}' is {data.ndim}D; choose a 2D image or a 3D volume (one phase)")
        modality = self.modality.value
        if modality == MODALITY_CHOICES[0]:
            modality = modality_code(layer.metadata.get("modality"))
        if modality not in ("MG", "US", "MR"):
            raise AvptError(f"the modality of '{layer.name}' is unknown: choose MG, US or MR in the widget")
        if self.prompts.value is None:
            raise AvptError("no prompt set: tune one in 'A-VPT: Tune prompts' or import one")
        pre = None
        if data.ndim == 3 and self.pre.value is not None:
            if self.pre.value not in self.viewer.layers:
                raise AvptError(f"the pre-contrast layer '{self.pre.value}' is gone: choose another or 'none'")
            pre = np.asarray(self.viewer.layers[self.pre.value].data)
            if pre.shape != data.shape:
                raise AvptError(
                    f"the pre-contrast layer '{self.pre.value}' is {pre.shape} but '{layer.name}' is {data.shape}"
                )
        return layer, data, modality, Path(self.prompts.value), pre

    def segment(self):
        if self.worker is not None:
            return  # one run at a time
        try:
            layer, data, modality, prompts, pre = self._inputs()
        except AvptError as e:
            show_error(str(e))
            return
        # Import the engine (torch, timm) here on the GUI thread: importing
        # torch's compiler stack from a worker thread while Qt runs has
        # crashed the process.
        from ..engine import load_model  # noqa: F401
        from ..engine.infer import Segmenter  # noqa: F401
        from ..engine.lesions import lesion_list

        self._cancel.clear()
        window = tuple(layer.contrast_limits) if modality == "MG" else None
        axis = int(layer.metadata.get("acquisition_axis", 0)) if data.ndim == 3 else 0
        name, spacing = layer.name, layer.metadata.get("spacing_mm", tuple(layer.scale))
        # The size limit needs the pixel size the file gave, not napari's default scale of 1.
        known = tuple(layer.metadata["spacing_mm"]) if layer.metadata.get("spacing_known") else None
        threshold, min_mm, weak = self.threshold.value or None, self.min_size.value or None, self.weak.value
        min_peak = self.min_peak.value or None
        if min_mm is not None and known is None:
            show_info(f"'{layer.name}' has no pixel size from its file: the minimum lesion size is not applied")
        place = {"scale": layer.scale, "translate": layer.translate, "affine": layer.affine.affine_matrix}
        relay, cancel = self._relay, self._cancel

        @thread_worker(start_thread=False, ignore_errors=True)
        def run():
            # Expected outcomes come back as values, not exceptions, so the
            # user sees a plain message rather than a traceback.
            from ..engine.progress import Cancelled

            try:
                segmenter = self._segmenter(prompts).with_options(threshold, min_mm, weak, min_peak)
                if cancel.is_set():
                    raise Cancelled("cancelled")
                if data.ndim == 2:
                    seg = segmenter.segment_image(data, modality, window=window, spacing=known)
                else:
                    progress = lambda p: relay.progress.emit(p.done, p.total)  # noqa: E731
                    seg = segmenter.segment_volume(
                        data, modality, axis=axis, progress=progress, cancel=cancel.is_set, pre=pre, spacing=known
                    )
                # The lesion list too: region properties of a volume take a while.
                found = lesion_list(seg.lesion_labels, seg.lesion_probability, spacing)
                return "ok", (seg, result_layers(seg, name, place, spacing, modality), found)
            except Cancelled as e:
                return "cancelled", str(e)
            except AvptError as e:
                return "error", str(e)
            except MemoryError:
                return "error", "out of memory: crop the image or segment fewer slices"

        self.worker = run()
        self.worker.returned.connect(lambda outcome: self._done(layer, *outcome))
        self.worker.errored.connect(self._failed)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.progress.visible, self.progress.value = True, 0
        self.result.value = "working…"
        self.worker.start()

    def _failed(self, error):
        if not self._closed:
            show_error(f"segmentation failed: {error}")
        self._idle()

    def _on_destroyed(self, *_):
        self._closed = True
        self._cancel.set()
        self._steps = []

    def cancel(self):
        self._cancel.set()
        self.result.value = "cancelling…"

    def _on_progress(self, done: int, total: int):
        if self._closed:
            return
        self.progress.max, self.progress.value = total, done

    def _done(self, source, status, value):
        if self._closed:
            self.worker = None
            return
        if status == "ok":
            freeze_long_lived()  # before the layers are added: a full collection now froze the viewer
            seg, layers, found = value
            self._steps = self._plan(source, layers)
            self._steps.append(lambda: self._report(source, seg, found))
            self._next_step()
            return
        if status == "cancelled":
            show_info(f"Segmentation {value}")
            self.result.value = "cancelled"
        else:
            show_error(value)
            self.result.value = ""
        self._idle()

    def _next_step(self):
        """Add result layers one per turn of the event loop, so that napari
        keeps answering the user between them."""
        if self._closed:
            return
        if self._steps:
            try:
                self._steps.pop(0)()
            except Exception as e:  # noqa: BLE001 - a step runs in a Qt timer: never let it escape into Qt
                self._steps.clear()
                show_error(f"could not show the results: {e}")
                self._idle()
                return
            # A few ms between steps, so that input and painting get their
            # turn: with 0 two steps could run back to back.
            QTimer.singleShot(STEP_GAP_MS, self._next_step)
        else:
            self._idle()

    def _idle(self):
        self.worker = None
        if self._closed:
            return
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.progress.visible = False

    # -- results ---------------------------------------------------------

    def _plan(self, source, layers: list) -> list:
        """What to do with each new result layer: update an earlier result of
        the same image in place (cheap), keep a lesions layer the user painted
        on and add the new one beside it, or add it."""
        steps = []
        for new in layers:
            kind = new.metadata["avpt_result"]["kind"]
            target = None
            for existing in self.viewer.layers:
                meta = existing.metadata.get("avpt_result")
                if meta and meta.get("source") == source.name and meta.get("kind") == kind:
                    painted = existing.metadata.get("avpt_fingerprint") not in (None, fingerprint(existing.data))
                    if not painted and type(existing) is type(new):
                        target = existing
            if target is not None:
                steps.append(lambda t=target, n=new: update_layer(t, n))
            else:
                steps.append(lambda n=new: self._add_unselected(n))
        return steps

    def _add_unselected(self, layer) -> None:
        """Add a result layer without napari switching its layer controls to
        it (about 20 ms a layer, on the GUI thread): the selection's events
        are held back, and the image is selected again once all are in."""
        events = self.viewer.layers.selection.events
        with events.active.blocker(), events.changed.blocker():
            self.viewer.add_layer(layer)

    def _report(self, source, seg, found: list):
        self.result.value = result_summary(seg, found)
        self._lesion_rows, self._lesion_source = [], source  # filling the table is not the user choosing a row
        self.lesions.value = lesion_table(found, bool(source.metadata.get("spacing_known")), seg.lesion_labels.ndim)
        self.lesions.native.clearSelection()
        self._lesion_rows = found
        table = self.lesions.native
        table.resizeColumnsToContents()
        shown = min(len(found), 6)  # as tall as its rows, up to six (then it scrolls)
        table.setFixedHeight(
            table.horizontalHeader().height() + shown * table.verticalHeader().defaultSectionSize() + 4
        )
        self.lesions.visible = bool(found)
        # A DICOM source can take its lesions back to a PACS as a SEG.
        self.seg_button.visible = bool(source.metadata.get("sop_uids"))
        if found and seg.lesion_labels.ndim == 3:
            self._go_to(found[0])  # a volume run ends on the slice of its largest lesion
        self.viewer.layers.selection.active = source

    def _ask_dicom_seg(self, *_):
        from qtpy.QtWidgets import QFileDialog

        source = self._lesion_source
        if source is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save lesions as DICOM SEG", f"{source.name}_lesions.seg.dcm", "DICOM (*.dcm)"
        )
        if path:
            self.save_dicom_seg(path)

    def save_dicom_seg(self, path) -> Path | None:
        """The latest lesions of the chosen image as a DICOM SEG on the
        series (or image) it was read from; a notification either way."""
        from ..io.dicom_seg import write_dicom_seg
        from ..io.image import LoadedImage

        source = self._lesion_source
        lesions = next(
            (
                lay
                for lay in self.viewer.layers
                if (lay.metadata.get("avpt_result") or {}).get("source") == getattr(source, "name", None)
                and lay.metadata["avpt_result"].get("kind") == "lesions"
            ),
            None,
        )
        if source is None or lesions is None:
            show_error("segment an image first")
            return None
        image = LoadedImage(
            data=np.asarray(source.data), spacing=tuple(source.scale), name=source.name, meta=dict(source.metadata)
        )
        try:
            out = write_dicom_seg(path, np.asarray(lesions.data), image)
        except (AvptError, OSError, ValueError) as e:
            show_error(f"cannot save the DICOM SEG: {e}")
            return None
        show_info(f"saved {Path(out).name}")
        return Path(out)

    def _lesion_chosen(self):
        rows = sorted({i.row() for i in self.lesions.native.selectedIndexes()})
        if rows and rows[0] < len(self._lesion_rows):
            self._go_to(self._lesion_rows[rows[0]], centre=True)

    def _go_to(self, lesion, centre: bool = False) -> None:
        """Show `lesion`: its slice (volumes) and, when asked, the view centred on it."""
        source = self._lesion_source
        if source is None or source not in self.viewer.layers:
            return
        world = source.data_to_world(lesion.centroid)
        if lesion.slice is not None:
            z_world = source.data_to_world((lesion.slice, *lesion.centroid[1:]))
            axis = self.viewer.dims.ndim - 3
            self.viewer.dims.set_point(axis, z_world[0])
        if centre:
            self.viewer.camera.center = tuple(world[-2:]) if self.viewer.dims.ndisplay == 2 else tuple(world)
