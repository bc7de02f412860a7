"""Patient-level folds for datasets that do not publish their own.

A patient's fold is a function of its id alone (not of which other patients
are in the folder), so the same patient lands in the same fold whether a
user has the whole release or part of it, and every frame of a patient in
one fold: never one patient on both sides of a split.
"""

from __future__ import annotations

import hashlib

N_FOLDS = 5


def fold_of(patient: str, n_folds: int = N_FOLDS) -> int:
    """1..n_folds, stable across machines and Python runs (not `hash()`)."""
    digest = hashlib.sha256(patient.encode()).digest()
    return int.from_bytes(digest[:8], "big") % n_folds + 1
