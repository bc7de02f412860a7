"""Dock widget: generate a synthetic breast image with its ground truth."""

import napari
from magicgui import magic_factory
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error

from ..phantoms import make_breast_mri, make_mammogram, make_ultrasound
from .samples import phantom_layers

_MODALITIES = {"Mammogram": "MG", "Ultrasound": "US", "Breast MRI": "MR"}


def add_layer_tuples(viewer: napari.Viewer, layers: list[tuple]) -> None:
    for data, kwargs, layer_type in layers:
        getattr(viewer, f"add_{layer_type}")(data, **kwargs)


@magic_factory(
    call_button="Generate",
    modality={"choices": list(_MODALITIES)},
    finding={"choices": ["random", "normal", "benign", "malignant"]},
    density={"choices": ["random", "a", "b", "c", "d"], "tooltip": "BI-RADS density (mammogram and MRI)"},
    seed={"min": 0, "max": 1_000_000},
)
def phantom_widget(
    viewer: napari.Viewer, modality: str = "Mammogram", finding: str = "random", density: str = "random", seed: int = 0
):
    """Make the phantom in a worker thread (an MRI takes a few seconds) and
    add its layers when it is ready."""
    code = _MODALITIES[modality]
    label = None if finding == "random" else finding
    dens = None if density == "random" else density

    @thread_worker(start_thread=False, ignore_errors=True)
    def make():
        if code == "MG":
            phantom = make_mammogram(seed, label=label, density=dens)
        elif code == "US":
            phantom = make_ultrasound(seed, label=label)
        else:
            phantom = make_breast_mri(seed, label=label, density=dens)
        return phantom_layers(phantom, f"{modality.lower()} {seed}")

    worker = make()
    worker.returned.connect(lambda layers: add_layer_tuples(viewer, layers))
    worker.errored.connect(lambda e: show_error(f"cannot make the phantom: {e}"))
    worker.start()
    return worker
