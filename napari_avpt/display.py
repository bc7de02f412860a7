"""How our label layers look in napari: one fixed, documented colour table."""

from __future__ import annotations

from .phantoms.breast import TISSUE_NAMES

# Tissue regions: fatty = yellow, glandular = magenta, ductal = cyan
# (see docs/user-guide.md); lesions = red.
TISSUE_COLORS = {0: "transparent", 1: "#f2d64b", 2: "#d94fd9", 3: "#33d6e6", None: "transparent"}
LESION_COLORS = {0: "transparent", None: "#ff3030"}


def tissue_layer_kwargs() -> dict:
    return {"colormap": dict(TISSUE_COLORS), "opacity": 0.3, "features": {"tissue": list(TISSUE_NAMES.values())}}


def lesion_layer_kwargs() -> dict:
    return {"colormap": dict(LESION_COLORS), "opacity": 0.6}
