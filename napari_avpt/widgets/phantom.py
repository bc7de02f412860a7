"""Dock widget: generate a synthetic breast image with its ground truth."""

from magicgui import magic_factory
from napari.qt.threading import FunctionWorker, thread_worker
from napari.types import LayerDataTuple

from ..phantoms import make_breast_mri, make_mammogram, make_ultrasound
from ..samples import phantom_layers

_MODALITIES = {"Mammogram": "MG", "Ultrasound": "US", "Breast MRI": "MR"}


@magic_factory(
    call_button="Generate",
    modality={"choices": list(_MODALITIES)},
    finding={"choices": ["random", "normal", "benign", "malignant"]},
    density={"choices": ["random", "a", "b", "c", "d"], "tooltip": "BI-RADS density (mammogram and MRI)"},
    seed={"min": 0, "max": 1_000_000},
)
def phantom_widget(
    modality: str = "Mammogram", finding: str = "random", density: str = "random", seed: int = 0
) -> FunctionWorker[list[LayerDataTuple]]:
    code = _MODALITIES[modality]
    label = None if finding == "random" else finding
    dens = None if density == "random" else density

    @thread_worker
    def make() -> list[LayerDataTuple]:
        if code == "MG":
            phantom = make_mammogram(seed, label=label, density=dens)
        elif code == "US":
            phantom = make_ultrasound(seed, label=label)
        else:
            phantom = make_breast_mri(seed, label=label, density=dens)
        return phantom_layers(phantom, f"{modality.lower()} {seed}")

    return make()
