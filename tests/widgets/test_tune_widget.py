"""The tuning dock driven as a user would: two painted images, a few
epochs, save, then segment with the new prompt set."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_avpt.phantoms import make_ultrasound
from napari_avpt.widgets.segment import SegmentWidget
from napari_avpt.widgets.tune import TuneWidget

pytestmark = pytest.mark.gui


def _painted(viewer, seed, label):
    ph = make_ultrasound(seed, label=label, shape=(128, 160))
    image = viewer.add_image(ph.image, name=f"us{seed}", metadata={"modality": "US"}, scale=(0.1, 0.1))
    labels = viewer.add_labels(ph.lesion.copy(), name=f"us{seed} painted", scale=(0.1, 0.1))
    return image, labels


def _dock_with_two_pairs(make_napari_viewer):
    """A viewer with two painted ultrasound images, both added as pairs to a docked tuning widget."""
    viewer = make_napari_viewer()
    pairs = [_painted(viewer, 1, "malignant"), _painted(viewer, 2, "benign")]
    tune = TuneWidget(viewer)
    viewer.window.add_dock_widget(tune)
    tune.reset_choices()
    for (image, labels), finding in zip(pairs, ("malignant", "benign")):
        tune.image.value, tune.labels.value, tune.finding.value = image, labels, finding
        tune.add_pair.clicked()
    return viewer, tune


def test_tune_save_and_segment_with_it(make_napari_viewer, qtbot, library):
    viewer = make_napari_viewer()
    pairs = [_painted(viewer, 1, "malignant"), _painted(viewer, 2, "benign")]
    before = [lab.data.copy() for _, lab in pairs]
    tune = TuneWidget(viewer)
    viewer.window.add_dock_widget(tune)
    tune.reset_choices()
    # the trainable share is shown before starting, counted in a worker (the GUI stays free)
    qtbot.waitUntil(lambda: "%" in tune.params.value, timeout=60_000)
    for (image, labels), finding in zip(pairs, ("malignant", "benign")):
        tune.image.value, tune.labels.value, tune.finding.value = image, labels, finding
        tune.add_pair.clicked()
    assert "us1 + us1 painted (malignant)" in tune.pairs_label.value
    tune.epochs.value = 2
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=300_000)
    assert len(tune.history) == 2 and tune.save.enabled
    assert tune.result.status == "finished"
    for (_, labels), data in zip(pairs, before):
        assert np.array_equal(labels.data, data)  # the user's annotations are untouched
    tune.name.value = "my us set"
    tune.save.clicked()
    assert (library / "my us set.safetensors").exists()

    segment = SegmentWidget(viewer)
    viewer.window.add_dock_widget(segment)
    segment.reset_choices()
    choices = segment.prompts.choices
    assert any(Path(c).name == "my us set.safetensors" for c in choices if c)
    segment.image.value = pairs[0][0]
    segment.prompts.value = next(c for c in choices if c and Path(c).name == "my us set.safetensors")
    segment.segment()
    qtbot.waitUntil(lambda: segment.worker is None, timeout=120_000)
    assert "us1 lesions" in [lay.name for lay in viewer.layers]


def test_mismatched_or_empty_annotations_are_reported(make_napari_viewer, library):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((40, 50), np.uint8), name="frame", metadata={"modality": "US"})
    wrong = viewer.add_labels(np.zeros((30, 50), np.uint8), name="wrong size")
    empty = viewer.add_labels(np.zeros((40, 50), np.uint8), name="empty")
    tune = TuneWidget(viewer)
    tune.reset_choices()
    before = len(notification_manager.records)
    for labels in (wrong, empty):
        tune._clear_pairs()
        tune.image.value, tune.labels.value, tune.finding.value = image, labels, "benign"
        tune.add_pair.clicked()
        tune.start.clicked()
        assert tune.worker is None
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("annotation of 'frame' is (30, 50) but the image is (40, 50)" in m for m in messages)
    assert any("annotation of 'frame' is empty" in m for m in messages)


def test_tuning_the_finding_class_only_keeps_what_the_set_draws(make_napari_viewer, qtbot, library):
    from napari.utils.notifications import notification_manager
    from safetensors.torch import load_file

    from napari_avpt.engine import backbone_meta, build_model
    from napari_avpt.engine.checkpoints import read_metadata, save_prompt_set
    from napari_avpt.model import ModelConfig

    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    mine = save_prompt_set(
        library / "mine.safetensors", model, sha, {**backbone_meta(None, 0), "thresholds": {"US": 0.8}}
    )
    viewer, tune = _dock_with_two_pairs(make_napari_viewer)
    tune.what.value = "class-head"
    before = len(notification_manager.records)
    tune.start.clicked()  # from new, untrained prompts there is nothing to keep
    assert tune.worker is None
    assert "choose one in 'start from'" in str(notification_manager.records[-1].message)
    assert len(notification_manager.records) == before + 1
    tune.start_from.value = str(mine)
    head = sum(p.numel() for p in model.class_head.parameters())
    qtbot.waitUntil(lambda: tune.params.value.startswith(f"{head:,d} of"), timeout=60_000)
    tune.epochs.value = 2
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=300_000)
    assert tune.result.status == "finished"
    start = load_file(str(mine))
    # the best (the start, when no epoch beat it on the one validation image) and the last epoch's
    for path in (tune.result.best_path, tune.result.final_path):
        tuned = load_file(str(path))
        assert all(torch.equal(start[k], tuned[k]) for k in start if not k.startswith("class_head."))
        assert read_metadata(path)["thresholds"] == {"US": 0.8}
    tuned = load_file(str(tune.result.final_path))
    assert any(not torch.equal(start[k], tuned[k]) for k in start if k.startswith("class_head."))


def test_tune_on_an_images_and_masks_folder_with_the_docks_modality(make_napari_viewer, qtbot, library, tmp_path):
    from napari_avpt.phantoms.formats import write_dataset

    folder = write_dataset("folder", 4, seed=11, out=tmp_path / "mine", size=(96, 120))
    viewer = make_napari_viewer()
    tune = TuneWidget(viewer)
    viewer.window.add_dock_widget(tune)
    tune.reset_choices()
    tune.folder.value = folder
    tune.modality.value = "US"
    tune.epochs.value = 1
    statuses = []
    tune._relay.event.connect(lambda e: statuses.append(tune.status.value))  # after the dock's own handler
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=300_000)
    assert tune.result is not None and tune.result.status == "finished"
    assert "preparing image 4 of 4…" in statuses  # the folder's images, shown before the first step


def test_closing_the_viewer_mid_training_stops_it_harmlessly(make_napari_viewer, qtbot, library):
    from qtpy.QtCore import QThreadPool

    viewer, tune = _dock_with_two_pairs(make_napari_viewer)
    tune.epochs.value = 50
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.status.value.startswith("epoch"), timeout=120_000)
    viewer.close()
    started = time.perf_counter()
    assert QThreadPool.globalInstance().waitForDone(120_000)
    assert time.perf_counter() - started < 60  # stopped, not run to its 50 epochs
    qtbot.wait(200)  # what the worker still reported reached nothing that is gone


def test_stop_keeps_the_best_prompts_so_far(make_napari_viewer, qtbot, library):
    viewer, tune = _dock_with_two_pairs(make_napari_viewer)
    tune.epochs.value = 50
    tune.start.clicked()
    qtbot.waitUntil(lambda: len(tune.history) >= 1, timeout=120_000)  # an epoch is done: there is a best
    tune.stop.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=120_000)
    assert tune.result.status == "cancelled" and tune.result.best_epoch >= 1
    assert tune.status.value.startswith("cancelled") and tune.save.enabled and tune.start.enabled
    tune.name.value = "stopped"
    tune.save.clicked()
    assert (library / "stopped.safetensors").exists()


def test_an_unexpected_failure_while_tuning_is_a_notification(make_napari_viewer, qtbot, library, monkeypatch):
    from napari.utils.notifications import notification_manager

    import napari_avpt.engine.train as engine_train

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in training")

    viewer, tune = _dock_with_two_pairs(make_napari_viewer)
    monkeypatch.setattr(engine_train, "train", broken)
    before = len(notification_manager.records)
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=120_000)
    assert any("tuning failed: a bug in training" in str(n.message) for n in notification_manager.records[before:])
    assert tune.start.enabled and not tune.save.enabled


def test_a_time_budget_ends_the_tuning_when_it_is_spent(make_napari_viewer, qtbot, library):
    """'time budget (min)': as many of the epochs as fit; a budget far too
    short for fifty stops early, the progress bar's end moved to where it
    stopped."""
    viewer, tune = _dock_with_two_pairs(make_napari_viewer)
    tune.epochs.value = 50
    tune.minutes.value = 0.01  # 0.6 s: a few epochs, not fifty
    assert tune.minutes.value == 0.01
    tune.start.clicked()
    qtbot.waitUntil(lambda: tune.worker is None, timeout=300_000)
    assert tune.result.status == "finished" and "time budget" in tune.result.message
    assert len(tune.result.history) < 50 and tune.progress.max == len(tune.result.history)
