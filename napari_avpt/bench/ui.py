"""The Segment dock's responsiveness, measured as a user meets it (needs a display)."""

from __future__ import annotations

import time

import numpy as np


def ui_responsiveness(prompts, samples=("mammogram", "ultrasound", "mri"), settle_s: float = 2.0) -> dict:
    """Per sample, as a user meets the Segment widget: the first click's
    seconds to layers (`settle_s` after the dock opens, the time a user
    takes to choose the image: the model loads in the background
    meanwhile), a second click's, and the longest time napari's event loop
    went without running during each (a 10 ms timer). Needs a display."""
    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from ..widgets.segment import SegmentWidget

    def click(widget):
        ticks = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(10)
        start = time.perf_counter()
        widget.run_button.clicked()
        while widget.worker is not None or widget._steps:
            QApplication.processEvents()
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        timer.stop()
        gaps = np.diff([start, *ticks, time.perf_counter()]) * 1000
        return seconds, float(gaps.max())

    out = {}
    for sample in samples:
        viewer = napari.Viewer(show=True)
        layers = viewer.open_sample("napari-avpt", sample)
        widget = SegmentWidget(viewer)
        widget.add_prompt_file(prompts)
        viewer.window.add_dock_widget(widget)
        widget.reset_choices()
        widget.image.value = next(lay for lay in layers if lay._type_string == "image" and lay.visible)
        settle = time.perf_counter() + settle_s
        while time.perf_counter() < settle:
            QApplication.processEvents()
            time.sleep(0.01)
        first, first_stall = click(widget)
        again, again_stall = click(widget)
        out[sample] = {
            "first_click_s": first,
            "click_to_layers_s": again,
            "longest_ui_stall_ms": max(first_stall, again_stall),
            "first_stall_ms": first_stall,  # the result layers added
            "later_stall_ms": again_stall,  # updated in place
        }
        viewer.close()
    return out
