"""The layers a segmentation becomes in napari: lesions outlined, tissue
regions and attention maps hidden, each carrying what it came from."""

from __future__ import annotations

import hashlib

import napari
import numpy as np

from .display import LESION_CONTOUR, lesion_layer_kwargs, tissue_layer_kwargs


def fingerprint(data) -> str:
    return hashlib.sha1(np.ascontiguousarray(np.asarray(data)).tobytes()).hexdigest()


def update_layer(target, new) -> None:
    target.data = new.data
    target.metadata = dict(new.metadata)


def result_layers(seg, name: str, place: dict, spacing, modality: str) -> list:
    """napari layers for a segmentation, built off the GUI thread (making
    them is slow the first time; only adding them must happen on it)."""
    sizes = seg.lesion_sizes(spacing)
    info = {
        "class": seg.predicted_class,
        "probabilities": seg.class_probabilities,
        "lesion_sizes": {int(k): v for k, v in sizes.items()},
        "size_unit": "mm²" if seg.lesion_labels.ndim == 2 else "mm³",
        "modality": modality,
        **seg.settings(),
    }

    def meta(kind, labels=None, extra=None):
        m = {"avpt_result": {"source": name, "kind": kind}, **(extra or {})}
        if labels is not None:
            m["avpt_fingerprint"] = fingerprint(labels)  # to tell later whether the user painted on it
        return m

    tissue = seg.tissue_labels()
    lesions = seg.lesion_labels
    outlined = napari.layers.Labels(
        lesions, name=f"{name} lesions", metadata=meta("lesions", lesions, info), **lesion_layer_kwargs(), **place
    )
    outlined.contour = LESION_CONTOUR  # not a constructor argument in napari 0.9
    layers = [
        outlined,
        napari.layers.Labels(
            tissue, name=f"{name} tissue", metadata=meta("tissue", tissue), **tissue_layer_kwargs(), **place
        ),
    ]
    # The lesion outlined over the image as it is; tissue regions and
    # attention maps one toggle away (hidden): at full strength they hid
    # the lesion and the anatomy under it.
    for kind, att in seg.attention.items():
        layers.append(
            napari.layers.Image(
                att,
                name=f"{name} attention {kind}",
                metadata=meta(f"attention {kind}"),
                colormap="magma",
                blending="additive",
                opacity=0.5,
                visible=False,
                contrast_limits=(0.0, 1.0),
                **place,
            )
        )
    return layers


LESION_COLUMNS = ["id", "size", "longest", "p(lesion)", "slice"]


def result_summary(seg, found: list) -> str:
    """The dock's result line: the class and its probabilities (and when
    the lesion's shape took part in it), the lesions found, the time, and
    a word where the class and the outlines disagree (they are read
    separately: on 2-3 % of held-out BUS-BRA frames the class read normal
    beside a drawn lesion)."""
    probs = " · ".join(f"{c} {p:.2f}" for c, p in seg.class_probabilities.items())
    basis = "; with the lesion's shape" if seg.class_from != "class head" else ""
    count = f"{len(found)} lesion{'s' if len(found) != 1 else ''}" if found else "no lesion found"
    text = f"<b>{seg.predicted_class}</b> ({probs}{basis})<br>{count}; {seg.seconds:.1f} s"
    if found and seg.predicted_class == "normal":
        text += "<br><i>The class reads normal beside a drawn lesion: a doubtful finding, look at it.</i>"
    elif not found and seg.predicted_class != "normal":
        text += "<br><i>The class reads a lesion that no outline shows: a lower threshold may find it.</i>"
    return text


def lesion_table(found: list, spacing_known: bool, ndim: int) -> dict:
    """The dock's lesion list (a magicgui Table value): one row per lesion."""
    # Sizes in mm where the file gave the pixel size, else in pixels
    # (napari's scale of 1 is not a millimetre).
    length = "mm" if spacing_known else "px"
    unit = length + ("²" if ndim == 2 else "³")
    # Text with units: the table would show a bare number as 10.7000.
    rows = [
        [f"{f.id}", f"{f.size:.0f} {unit}", f"{f.diameter_mm:.1f} {length}", f"{100 * f.probability:.0f} %"]
        + ([f"{f.slice}"] if ndim == 3 else ["–"])
        for f in found
    ]
    return {"data": rows, "index": [""] * len(rows), "columns": LESION_COLUMNS}
