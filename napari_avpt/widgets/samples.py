"""napari sample data: one synthetic breast image per modality, with its
ground truth as hidden label layers ("lesion truth", "tissue truth")."""

from __future__ import annotations

from ..io.image import LoadedImage, default_window
from ..phantoms import make_breast_mri, make_mammogram, make_ultrasound
from ..phantoms.record import Phantom
from .display import lesion_layer_kwargs, tissue_layer_kwargs

SAMPLE_SEEDS = {"MG": 8, "US": 10, "MR": 5}


def phantom_layers(phantom: Phantom, name: str) -> list[tuple]:
    """Layer data for a phantom: the image (and, for MRI, the pre-contrast
    phase, hidden) plus its truth layers, hidden, on the same scale."""
    meta = {k: v for k, v in phantom.meta.items() if not isinstance(v, dict)}
    meta.update(label=phantom.label, phantom=True, spacing_known=True)
    # Window on the breast, as a DICOM VOI window would be, not on the air.
    inside = phantom.image[phantom.tissue > 0] if phantom.modality == "MG" else phantom.image
    window = default_window(inside if inside.size else phantom.image)
    image = LoadedImage(phantom.image, phantom.spacing, name, phantom.modality, window=window, meta=meta)
    layers = [image.layer_data()]
    if phantom.phases:
        # After the image, so the Segment widget offers the image first and
        # this as its pre-contrast phase.
        pre = phantom.phases["pre"]
        layers.append(
            LoadedImage(
                pre, phantom.spacing, f"{name} pre", phantom.modality, window=default_window(phantom.image), meta=meta
            ).layer_data()
        )
        layers[-1][1]["visible"] = False
    scale = tuple(float(s) for s in phantom.spacing)
    layers.append(
        (
            phantom.tissue,
            {"name": f"{name} tissue truth", "scale": scale, "visible": False, **tissue_layer_kwargs()},
            "labels",
        )
    )
    layers.append(
        (
            phantom.lesion,
            {"name": f"{name} lesion truth", "scale": scale, "visible": False, **lesion_layer_kwargs()},
            "labels",
        )
    )
    return layers


def sample_phantom(modality: str) -> Phantom:
    """The phantom behind each napari sample: MG a malignant mammogram,
    US a benign ultrasound frame, MR a malignant MRI volume with its
    pre-contrast phase."""
    if modality == "MG":
        return make_mammogram(SAMPLE_SEEDS["MG"], label="malignant", shape=(768, 624))
    if modality == "US":
        return make_ultrasound(SAMPLE_SEEDS["US"], label="benign")
    return make_breast_mri(SAMPLE_SEEDS["MR"], label="malignant")


def mammogram_sample() -> list[tuple]:
    return phantom_layers(sample_phantom("MG"), "mammogram")


def ultrasound_sample() -> list[tuple]:
    return phantom_layers(sample_phantom("US"), "ultrasound")


def mri_sample() -> list[tuple]:
    return phantom_layers(sample_phantom("MR"), "breast MRI")
