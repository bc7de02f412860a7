"""Which layer is a contrast MRI volume's pre-contrast phase: the same rule
for segmenting (the Segment widget's *pre-contrast* field) and for tuning
(a painted volume is taught as the subtraction too)."""

from __future__ import annotations

import napari

from ..io.datasets.duke import phase_of, the_pre_contrast


def description(layer) -> str:
    """What says which phase a layer is: its DICOM series description, else its name."""
    return str(layer.metadata.get("SeriesDescription") or layer.name)


def same_grid_volumes(layers, layer) -> list:
    """The other gray 3D image layers with `layer`'s shape (none for a 2D layer)."""
    if layer is None or layer.ndim != 3 or layer.rgb:
        return []
    return [
        other
        for other in layers
        if isinstance(other, napari.layers.Image)
        and other is not layer
        and not other.rgb
        and other.data.shape == layer.data.shape
    ]


def pre_contrast_of(layers, layer):
    """The one layer on `layer`'s grid that says it is the pre-contrast
    phase (a Duke 'ax dyn pre' series, the MRI sample's 'breast MRI pre'),
    else None; None too when `layer` is itself a pre-contrast phase."""
    if layer is None or phase_of(description(layer)) == "pre":
        return None
    return the_pre_contrast(same_grid_volumes(layers, layer), description)
