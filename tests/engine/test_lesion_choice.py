"""Which drawn region is the lesion: the region features, the Segmenter
ranking regions by a set's fit, its metadata, and `calibrate-regions`."""

import dataclasses

import numpy as np
import pytest
from skimage.draw import disk

from napari_avpt.cli import main
from napari_avpt.engine import load_model
from napari_avpt.engine.checkpoints import with_metadata
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.lesion_choice import REGION_FEATURES, region_features
from napari_avpt.engine.lesion_class import ShapeFit, carried_meta
from napari_avpt.errors import AvptError
from napari_avpt.io.weights import default_prompts
from napari_avpt.phantoms.formats import write_dataset

F = {name: i for i, name in enumerate(REGION_FEATURES)}


def _two_regions():
    """A frame with a large, strong region near the top (bright, as the band
    under the skin) and a smaller one deeper and darker than its ring."""
    shape = (200, 240)
    prob, image, labels = np.zeros(shape, np.float32), np.full(shape, 120.0, np.float32), np.zeros(shape, np.int32)
    top, deep = disk((40, 60), 25, shape=shape), disk((130, 120), 14, shape=shape)
    prob[top], labels[top] = 0.9, 1
    prob[deep], labels[deep] = 0.7, 2
    image[deep] = 30.0
    return labels, prob, image


def _depth_fit(weight: float) -> ShapeFit:
    """A fit that ranks regions by depth alone (deeper: more likely the lesion when weight > 0)."""
    n = len(REGION_FEATURES)
    weights = [0.0] * n
    weights[F["depth"]] = weight
    return ShapeFit("US", (0.5,) * n, (0.1,) * n, tuple(weights), 0.0, REGION_FEATURES)


def test_region_features_read_mass_size_place_darkness_and_shape():
    labels, prob, image = _two_regions()
    x = region_features(labels, prob, image, [1, 2])
    assert x.shape == (2, len(REGION_FEATURES))
    area = np.bincount(labels.ravel())[1:]
    assert x[:, F["log_area_share"]] == pytest.approx(np.log(area / labels.size))
    assert x[0, F["log_mass_over_strongest"]] == pytest.approx(0.0)  # the top region has the most mass
    assert x[1, F["log_mass_over_strongest"]] == pytest.approx(np.log(0.7 * area[1] / (0.9 * area[0])), rel=1e-5)
    assert x[:, F["mean_probability"]] == pytest.approx([0.9, 0.7])
    assert x[:, F["max_probability"]] == pytest.approx([0.9, 0.7])
    assert x[:, F["depth"]] == pytest.approx([40 / 200, 130 / 200], abs=0.01)
    assert x[:, F["off_centre"]] == pytest.approx([abs(60 / 240 - 0.5), 0.0], abs=0.01)
    assert x[0, F["log_contrast"]] == pytest.approx(0.0, abs=1e-6)  # as bright as its ring
    assert x[1, F["log_contrast"]] < -1.0  # darker than its ring
    assert abs(x[0, F["log_height_over_width"]]) < 0.1 and abs(x[0, F["log_compactness"]]) < 0.3
    # The same features whatever the intensity scale of the frame (8 bit, 16 bit, float).
    assert region_features(labels, prob, image * 200.0, [1, 2]) == pytest.approx(x, rel=1e-4, abs=1e-4)


def test_the_segmenter_ranks_regions_by_the_sets_fit_where_it_has_one():
    labels, prob, image = _two_regions()
    model, meta = load_model(default_prompts())
    by_mass = Segmenter(model, "cpu", weak_ratio=0.5, min_lesion_px=4)
    kept = by_mass._instances(prob, 0.5, None, "US", image=image)
    assert kept.max() == 1 and (kept > 0)[40, 60]  # the deep region has under half the mass: dropped
    chosen = Segmenter(model, "cpu", weak_ratio=0.5, lesion_choice=_depth_fit(5.0))
    kept = chosen._instances(prob, 0.5, None, "US", image=image)
    assert kept.max() == 1 and (kept > 0)[130, 120] and not (kept > 0)[40, 60]
    # A weak ratio of 0 keeps every region; a fit for another modality is not used.
    assert chosen.with_options(weak_ratio=0.0)._instances(prob, 0.5, None, "US", image=image).max() == 2
    other = Segmenter(model, "cpu", weak_ratio=0.5, lesion_choice=dataclasses.replace(_depth_fit(5.0), modality="MG"))
    assert (other._instances(prob, 0.5, None, "US", image=image) > 0)[40, 60]


def test_the_fit_goes_through_metadata_is_carried_over_and_bad_metadata_is_refused(tmp_path):
    fit = _depth_fit(2.0)
    out = with_metadata(
        default_prompts(), tmp_path / "chosen.safetensors", {"lesion_choice": fit.to_json(), "lesion_choice_data": "x"}
    )
    model, meta = load_model(out)
    assert meta["lesion_choice"] == fit
    assert Segmenter.for_set(model, meta, "cpu").lesion_choice == fit
    carried = carried_meta(meta, "chosen")["lesion_choice"]
    assert ShapeFit.from_meta(carried, "x", REGION_FEATURES, "lesion_choice") == fit
    shaped = ShapeFit("US", (0.0,) * 5, (1.0,) * 5, (0.0,) * 5, 0.0)  # a class-shape fit: the wrong features
    for bad in ("{", shaped.to_json()):
        broken = with_metadata(out, tmp_path / "broken.safetensors", {"lesion_choice": bad})
        with pytest.raises(AvptError, match="broken.safetensors: .*lesion_choice"):
            load_model(broken)


def test_calibrate_regions_writes_a_fit_that_loads_and_refuses_too_few_images(tmp_path, capsys):
    data = write_dataset("busbra", 24, seed=5, out=tmp_path / "BUSBRA", size=(128, 160))
    out = tmp_path / "chosen.safetensors"
    assert main(["calibrate-regions", "--data", str(data), "--out", str(out), "--quiet"]) == 0
    assert "by the fit" in capsys.readouterr().out
    model, meta = load_model(out)
    assert isinstance(meta["lesion_choice"], ShapeFit) and meta["lesion_choice"].features == REGION_FEATURES
    assert meta["lesion_choice_data"].startswith("fitted on")
    assert main(["calibrate-regions", "--data", f"{data}:n=3", "--out", str(tmp_path / "few.safetensors")]) != 0
    assert "at least 10 images" in capsys.readouterr().err
    assert not (tmp_path / "few.safetensors").exists()


def test_segment_reports_what_ranked_the_regions(tmp_path):
    import json

    from PIL import Image

    from napari_avpt.widgets.samples import sample_phantom

    frame = sample_phantom("US").image
    png = tmp_path / "frame.png"
    Image.fromarray(np.clip(frame * (255.0 / max(float(frame.max()), 1e-6)), 0, 255).astype(np.uint8)).save(png)
    out = tmp_path / "out"
    assert main(["segment", str(png), "--modality", "US", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "frame.json").read_text())
    assert report["regions_ranked_by"] == "lesion choice" and report["lesion_min_peak"] == 0.0  # the default's fit
    peaked = tmp_path / "peaked"
    assert (
        main(["segment", str(png), "--modality", "US", "--out", str(peaked), "--device", "cpu", "--min-peak", "0.99"])
        == 0
    )
    assert json.loads((peaked / "frame.json").read_text())["lesion_min_peak"] == 0.99
    model, meta = load_model(default_prompts())
    segmenter = Segmenter.for_set(model, meta, "cpu")
    assert segmenter.segment_image(sample_phantom("MG").image, "MG").ranked_by == "probability mass"  # fit for US only
