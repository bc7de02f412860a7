import numpy as np
import pytest

from napari_avpt.engine.anatomy import breast_mask, labels_to_maps, maps_to_labels, tissue_maps
from napari_avpt.phantoms import make_breast_mri, make_mammogram, make_ultrasound
from napari_avpt.scoring.metrics import dice


def test_label_maps_round_trip():
    labels = np.array([[0, 1, 2, 3]], np.uint8)
    maps = labels_to_maps(labels)
    assert maps.shape == (3, 1, 4) and np.array_equal(maps_to_labels(maps), labels)


@pytest.mark.parametrize(
    "make, modality, breast_min, gland_min",
    [(make_mammogram, "MG", 0.85, 0.55), (make_ultrasound, "US", 0.6, 0.4), (make_breast_mri, "MR", 0.75, 0.5)],
)
def test_priors_find_breast_and_glands(make, modality, breast_min, gland_min):
    scores = {"breast": [], "gland": []}
    for seed in range(3):
        ph = make(50 + seed, label="normal")
        image, truth = (
            (ph.image, ph.tissue)
            if ph.image.ndim == 2
            else (ph.image[ph.image.shape[0] // 2], ph.tissue[ph.tissue.shape[0] // 2])
        )
        maps = tissue_maps(image, modality)
        assert maps.shape == (3,) + image.shape and maps.min() >= 0 and maps.max() <= 1 + 1e-6
        labels = maps_to_labels(maps)
        scores["breast"].append(dice(labels > 0, truth > 0))
        scores["gland"].append(dice(labels == 2, truth == 2))
    assert np.mean(scores["breast"]) > breast_min
    assert np.mean(scores["gland"]) > gland_min


def test_mlo_pectoral_muscle_is_not_breast():
    ph = make_mammogram(9, label="normal", view="MLO", laterality="L", shape=(256, 208))
    mask = breast_mask(ph.image, "MG")
    muscle_corner = (slice(0, 15), slice(0, 8))
    assert not mask[muscle_corner].any()


def test_the_pectoral_muscle_is_found_on_a_film_with_dark_margins():
    """A digitised film (mini-MIAS) has black margins around the breast: the
    chest wall is the breast's edge, not the image's, and the muscle must
    be left out all the same."""
    for laterality in ("L", "R"):
        ph = make_mammogram(9, label="normal", view="MLO", laterality=laterality, shape=(256, 208))
        framed = np.pad(ph.image, ((20, 20), (40, 40)), constant_values=ph.image.min())
        inner = breast_mask(framed, "MG")[20:-20, 40:-40]
        alone = breast_mask(ph.image, "MG")
        corner = (slice(0, 15), slice(0, 8) if laterality == "L" else slice(-8, None))
        assert not alone[corner].any() and not inner[corner].any(), laterality  # the muscle's corner
        assert dice(inner, alone) > 0.99, laterality
