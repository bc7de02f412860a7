"""Synthetic breast phantoms with ground truth, per modality, and writers in
the INbreast / BUSI / Duke on-disk layouts (`phantoms.formats`)."""

from .breast import CLASSES, TISSUE_NAMES
from .mammography import make_mammogram
from .mri import make_breast_mri
from .record import Phantom
from .ultrasound import make_ultrasound

MAKERS = {"MG": make_mammogram, "US": make_ultrasound, "MR": make_breast_mri}

__all__ = ["CLASSES", "MAKERS", "TISSUE_NAMES", "Phantom", "make_breast_mri", "make_mammogram", "make_ultrasound"]
