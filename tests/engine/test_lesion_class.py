"""Benign vs malignant from the class head and the drawn lesion's shape:
the features, the fit, its metadata, and the Segmenter using it."""

import dataclasses

import numpy as np
import pytest
from skimage.draw import ellipse

from napari_avpt.cli import main
from napari_avpt.engine import load_model
from napari_avpt.engine.checkpoints import with_metadata
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.lesion_class import FEATURES, ShapeFit, fit_shape, lesion_features
from napari_avpt.errors import AvptError
from napari_avpt.io.weights import default_prompts
from napari_avpt.phantoms.formats import write_dataset
from napari_avpt.widgets.samples import sample_phantom


def _ellipse(rows: int, cols: int, shape=(200, 200), centre=(80, 100)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[ellipse(*centre, rows, cols, shape=shape)] = True
    return mask


def test_features_read_size_orientation_margin_and_the_shadow_behind():
    image = np.full((200, 200), 100.0)
    tall, wide = _ellipse(30, 15), _ellipse(15, 30)
    f_tall, f_wide = lesion_features(0.3, tall, image), lesion_features(0.3, wide, image)
    assert f_tall[0] == 0.3
    assert f_tall[2] > 0.5 and f_wide[2] < -0.5  # log(height / width)
    assert f_tall[1] == pytest.approx(np.log(tall.sum() / tall.size))
    assert abs(f_tall[3]) < 0.3  # an ellipse is near compact; a ragged outline is not
    ragged = tall.copy()
    ragged[::2, :] &= ~np.roll(tall, 3, axis=1)[::2, :]
    assert lesion_features(0.3, ragged, image)[3] > f_tall[3] + 0.3
    assert f_tall[4] == pytest.approx(0.0, abs=1e-6)  # uniform: no shadow
    shadowed = image.copy()
    shadowed[110:, 85:115] = 20.0  # dark below the lesion, not beside it
    assert lesion_features(0.3, tall, shadowed)[4] < -1.0


def test_a_fit_learns_which_way_a_feature_points_and_refuses_one_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    y = x[:, 2] + 0.3 * rng.normal(size=200) > 0  # taller than wide: malignant
    fit = fit_shape(x, y)
    assert fit.weights[2] > 1.0 and abs(fit.weights[4]) < fit.weights[2] / 3
    tall, wide = np.zeros(len(FEATURES)), np.zeros(len(FEATURES))
    tall[2], wide[2] = 2.0, -2.0
    assert fit.malignancy(tall) > 0.9 > 0.1 > fit.malignancy(wide)
    with pytest.raises(AvptError, match="benign and malignant both"):
        fit_shape(x, np.zeros(200, bool))


def test_the_fit_round_trips_through_metadata_and_bad_metadata_is_refused():
    fit = ShapeFit("US", (0.0,) * 5, (1.0,) * 5, (0.5, 1.0, -1.0, 0.2, 0.0), -0.3)
    assert ShapeFit.from_meta(fit.to_json()) == fit
    assert ShapeFit.from_meta(None) is None
    for bad in ("{", '{"modality": "US"}', dataclasses.replace(fit, features=("head",)).to_json()):
        with pytest.raises(AvptError, match="class_shape"):
            ShapeFit.from_meta(bad, "p.safetensors")
    with pytest.raises(AvptError, match="spread"):
        ShapeFit.from_meta(dataclasses.replace(fit, scale=(0.0,) * 5).to_json())


def test_the_segmenter_takes_the_class_from_the_lesion_where_the_set_has_a_fit():
    model, meta = load_model(default_prompts())
    frame = sample_phantom("US")
    plain = Segmenter(model, "cpu", threshold=meta["thresholds"])
    before = plain.segment_image(frame.image, "US")
    assert before.lesion_labels.any() and before.class_from == "class head"
    # A fit that answers "malignant" whatever it sees: the normal share stays the head's.
    sure = ShapeFit("US", (0.0,) * 5, (1.0,) * 5, (0.0,) * 5, 12.0)
    after = Segmenter(model, "cpu", threshold=meta["thresholds"], class_shape=sure).segment_image(frame.image, "US")
    assert after.class_from == "class head and lesion shape"
    p, q = before.class_probabilities, after.class_probabilities
    assert q["normal"] == pytest.approx(p["normal"])
    assert q["malignant"] == pytest.approx(p["benign"] + p["malignant"], rel=1e-4) and q["benign"] < 1e-4
    np.testing.assert_array_equal(after.lesion_labels, before.lesion_labels)
    # A fit for another modality is not used.
    other = Segmenter(model, "cpu", threshold=meta["thresholds"], class_shape=dataclasses.replace(sure, modality="MG"))
    assert other.segment_image(frame.image, "US").class_probabilities == p


def test_calibrate_class_writes_a_fit_that_loads_and_a_broken_one_is_refused(tmp_path, capsys):
    data = write_dataset("busbra", 24, seed=5, out=tmp_path / "BUSBRA", size=(128, 160))
    out = tmp_path / "shaped.safetensors"
    assert main(["calibrate-class", "--data", str(data), "--out", str(out), "--quiet"]) == 0
    assert "with the lesion's shape" in capsys.readouterr().out
    model, meta = load_model(out)
    assert isinstance(meta["class_shape"], ShapeFit) and meta["class_shape"].modality == "US"
    assert meta["class_shape_data"].startswith("fitted on")
    broken = with_metadata(out, tmp_path / "broken.safetensors", {"class_shape": '{"modality": "US"}'})
    with pytest.raises(AvptError, match="broken.safetensors: unreadable class_shape"):
        load_model(broken)
    # No lesion of both classes: a one-line error and a non-zero exit, and no file.
    assert main(["calibrate-class", "--data", f"{data}:n=2", "--out", str(tmp_path / "few.safetensors")]) != 0
    assert not (tmp_path / "few.safetensors").exists()
