"""The Segment dock's sensitivity fields: lesion threshold, minimum size,
minimum peak and what to do with weaker regions; at its first value each
leaves the engine's default (the prompt set's, the modality's, or off)."""

from __future__ import annotations

from magicgui.widgets import ComboBox, FloatSpinBox

# What to draw of regions much weaker than the strongest (the engine's weak_ratio).
WEAK_CHOICES = [
    ("modality default", None),
    ("keep all", 0.0),
    ("drop under 1/4 of the strongest", 0.25),
    ("drop under 1/2 of the strongest", 0.5),
    ("the strongest only", 1.0),
]


def _optional_spin(label: str, off_text: str, maximum: float, step: float, tooltip: str) -> FloatSpinBox:
    """A number field whose lowest value, 0, means 'not set' and reads `off_text`."""
    spin = FloatSpinBox(value=0.0, min=0.0, max=maximum, step=step, label=label, tooltip=tooltip)
    spin.native.setSpecialValueText(off_text)
    return spin


def sensitivity_fields() -> tuple[FloatSpinBox, FloatSpinBox, FloatSpinBox, ComboBox]:
    """(threshold, min lesion mm, min peak, weaker regions), as a reader
    sets them for one run; at its lowest value each field says what it
    does then."""
    threshold = _optional_spin(
        "lesion threshold",
        "prompt set",
        0.95,
        0.05,
        "Lesion probability above which a pixel is drawn as lesion. Lower finds more "
        "(and more false lesions); 'prompt set' uses the threshold calibrated for the modality.",
    )
    min_size = _optional_spin(
        "min lesion (mm)",
        "modality default",
        50.0,
        0.5,
        "Leave out lesions narrower than this (the diameter of a disc, or a ball in a volume, "
        "of the same size). Needs the pixel size from the file (DICOM, NIfTI). 'modality default': "
        "mammography 5 mm, ultrasound 3 mm, MRI 5 mm; 0.5 keeps all but specks.",
    )
    min_peak = _optional_spin(
        "min lesion peak",
        "off",
        0.95,
        0.05,
        "Leave out regions whose lesion probability stays under this everywhere inside them: the "
        "threshold draws a lesion's extent, the peak decides whether to keep it. Higher leaves more "
        "lesion-free images clean and misses more weakly found lesions (ultrasound, 0.85: 93 % of "
        "lesion-free views clean instead of 86 %, and 1 % of lesions lost). 'off', or a value at or "
        "under the lesion threshold, keeps all.",
    )
    weak = ComboBox(
        choices=WEAK_CHOICES,
        label="weaker regions",
        tooltip="Regions whose lesion probability, summed over the region, is a small share of the "
        "strongest region's are mostly false (dark ducts and shadows beside an ultrasound mass). "
        "'modality default': ultrasound drops those under 1/2, mammography and MRI keep all. A prompt set "
        "with a lesion choice (the shipped default, for ultrasound) ranks regions by that fitted score instead.",
    )
    return threshold, min_size, min_peak, weak
