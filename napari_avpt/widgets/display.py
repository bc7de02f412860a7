"""How our label layers look in napari: one fixed, documented colour table."""

from __future__ import annotations

from ..phantoms.breast import TISSUE_NAMES

# Tissue regions: fatty = yellow, glandular = magenta, ductal = cyan
# (see docs/user-guide.md); lesions = red.
TISSUE_COLORS = {0: "transparent", 1: "#f2d64b", 2: "#d94fd9", 3: "#33d6e6", None: "transparent"}
LESION_COLORS = {0: "transparent", None: "#ff3030"}


# The legend the segment dock shows under its results.
TISSUE_LEGEND_HTML = " ".join(
    f'<span style="color:{TISSUE_COLORS[v]}">&#9632;</span> {TISSUE_NAMES[v]}' for v in (1, 2, 3)
)


def tissue_layer_kwargs() -> dict:
    """Tissue regions: added hidden, faint when shown (the image must stay readable)."""
    return {
        "colormap": dict(TISSUE_COLORS),
        "opacity": 0.25,
        "visible": False,
        "features": {"tissue": list(TISSUE_NAMES.values())},
    }


LESION_CONTOUR = 2  # lesions are drawn as outlines this thick, the image seen through them


def lesion_layer_kwargs() -> dict:
    return {"colormap": dict(LESION_COLORS), "opacity": 0.9}
