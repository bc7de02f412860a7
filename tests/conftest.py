"""Shared fixtures: small phantoms, fast enough for every test run."""

from __future__ import annotations

import pytest

from napari_avpt.phantoms import make_breast_mri, make_mammogram, make_ultrasound

SMALL = {"MG": (160, 130), "US": (128, 160), "MR": (24, 72, 88)}


@pytest.fixture(scope="session")
def small_mammogram():
    return make_mammogram(3, label="malignant", view="MLO", laterality="R", shape=SMALL["MG"])


@pytest.fixture(scope="session")
def small_ultrasound():
    return make_ultrasound(4, label="benign", shape=SMALL["US"])


@pytest.fixture(scope="session")
def small_mri():
    return make_breast_mri(5, label="malignant", shape=SMALL["MR"])
