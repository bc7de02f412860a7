"""`demo`: napari with a sample (or the user's image) and the plugin's docks; screenshots."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import AvptError


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

    from ..io.weights import default_prompts

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
