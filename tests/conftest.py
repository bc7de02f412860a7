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


@pytest.fixture(autouse=True, scope="session")
def _example_cache_in_a_temporary_folder(tmp_path_factory):
    """Prepared examples are cached on disk (`engine.example_cache`): in the
    tests, in a folder of their own rather than the user's cache."""
    import os

    old = os.environ.get("NAPARI_AVPT_CACHE")
    os.environ["NAPARI_AVPT_CACHE"] = str(tmp_path_factory.mktemp("example-cache"))
    yield
    if old is None:
        os.environ.pop("NAPARI_AVPT_CACHE", None)
    else:
        os.environ["NAPARI_AVPT_CACHE"] = old
