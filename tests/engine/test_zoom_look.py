"""The zoomed second look at an ultrasound lesion: the view (`views.lesion_view`),
the zoomed views training adds (`data.make_examples`), the Segmenter's look
(`zoom_look.look_again`) and the prompt-set metadata that turns it on."""

import json

import numpy as np
import pytest
import torch
from skimage.measure import label

from napari_avpt.engine import build_model, load_model
from napari_avpt.engine.anatomy import tissue_maps
from napari_avpt.engine.checkpoints import read_metadata, save_prompt_set, with_metadata
from napari_avpt.engine.data import make_examples
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.lesion_class import carried_meta
from napari_avpt.engine.preprocess import normalize, to_model_image
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.engine.views import ZOOM_LOOK_CONTEXT, ZOOM_MIN_SHARE, lesion_view
from napari_avpt.engine.zoom_look import look_again
from napari_avpt.errors import AvptError
from napari_avpt.model import ModelConfig
from napari_avpt.phantoms import make_mammogram, make_ultrasound

SIZE = 64


def _disc(shape, centre, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def test_a_zoomed_view_is_centred_on_the_lesion_and_sized_by_it():
    lesion = _disc((400, 500), (150, 260), 30)  # 61 pixels across
    fit = lesion_view(lesion.shape, lesion, SIZE, 2.5)
    r0, r1, c0, c1 = fit.box
    assert fit.side == round(2.5 * 61) and fit.pad == (0, 0) and (r1 - r0, c1 - c0) == (fit.side, fit.side)
    assert abs((r0 + r1) / 2 - 150.5) <= 1 and abs((c0 + c1) / 2 - 260.5) <= 1
    # the lesion fills more of this view than of the whole frame padded to a square
    view = fit.to_model(lesion.astype(np.float32))
    assert view.mean() > 4 * lesion.sum() / 500**2
    # moved by a share of the lesion's side
    moved = lesion_view(lesion.shape, lesion, SIZE, 2.5, shift=(0.2, -0.2))
    assert moved.box[0] - r0 == pytest.approx(12, abs=1) and moved.box[2] - c0 == pytest.approx(-12, abs=1)


def test_a_zoomed_view_stays_in_the_frame_is_never_tiny_and_is_not_made_for_a_large_lesion():
    edge = _disc((400, 500), (5, 495), 8)
    fit = lesion_view(edge.shape, edge, SIZE, 2.5)
    assert fit.side == round(ZOOM_MIN_SHARE * 500)  # 2.5 x 17 pixels is under the least side
    assert fit.box == (0, fit.side, 500 - fit.side, 500) and fit.pad == (0, 0)
    assert lesion_view(edge.shape, _disc((400, 500), (200, 250), 150), SIZE, 2.5) is None
    # a frame narrower than the view: padded, centred, like a single view
    band = _disc((100, 600), (50, 300), 20)
    fit = lesion_view(band.shape, band, SIZE, 3.0)
    assert fit.side == 180 and fit.box[:2] == (0, 100) and fit.pad == (40, 0)


def test_ultrasound_frames_with_a_lesion_get_a_zoomed_view_the_same_each_time():
    us = make_ultrasound(3, label="benign", shape=(192, 240))
    us.lesion = _disc(us.image.shape, (90, 120), 12)  # a small lesion, as most are on real frames
    examples = make_examples(us.image, "US", SIZE, "benign", us.lesion, example_id="f")
    whole, zoom = examples
    assert zoom.id == "f#zoom" and zoom.group == "f#zoom" and zoom.source == "f" and zoom.label == whole.label
    assert zoom.lesion.mean() > 2 * whole.lesion.mean()
    again = make_examples(us.image, "US", SIZE, "benign", us.lesion, example_id="f")[1]
    assert again.fit == zoom.fit and torch.equal(again.image, zoom.image)
    other = make_examples(us.image, "US", SIZE, "benign", us.lesion, example_id="g")[1]
    assert other.fit != zoom.fit  # context and centre vary from frame to frame
    # none for a frame without a lesion, nor for mammograms
    assert [e.id for e in make_examples(us.image, "US", SIZE, "normal", None, example_id="n")] == ["n"]
    mg = make_mammogram(1, label="malignant", shape=(200, 160))
    assert not any(e.id.endswith("#zoom") for e in make_examples(mg.image, "MG", SIZE, "malignant", mg.lesion))


def _look(segmenter, prob, norm, maps, rank=None):
    """The look as the Segmenter makes it, on the regions drawn from `prob` at 0.5."""
    regions = label(prob > 0.5)
    look_again(prob, regions, norm, maps, SIZE, 2.5, lambda x, t: segmenter._forward(x, t, "US")[0], rank)


def test_the_second_look_averages_the_zoomed_view_in_inside_it_alone():
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=2)
    segmenter = Segmenter(model, "cpu", zoom_look={"US": 2.5})
    frame = make_ultrasound(4, label="malignant", shape=(160, 200)).image
    norm, maps = normalize(frame, "US"), tissue_maps(frame, "US")
    prob = np.full(frame.shape, 0.05, np.float32)
    prob[_disc(frame.shape, (60, 140), 12)] = 0.9
    looked = prob.copy()
    _look(segmenter, looked, norm, maps)
    fit = lesion_view(frame.shape, prob > 0.5, SIZE, 2.5)
    r0, r1, c0, c1 = fit.box
    zoomed, _, _ = segmenter._forward(to_model_image(fit.to_model(norm))[None], fit.to_model(maps)[None], "US")
    expected = 0.5 * (prob[r0:r1, c0:c1] + fit.to_box(zoomed[:, None][0])[0])
    assert np.allclose(looked[r0:r1, c0:c1], expected, atol=1e-6)
    outside = np.ones(frame.shape, bool)
    outside[r0:r1, c0:c1] = False
    assert outside.any() and np.array_equal(looked[outside], prob[outside])
    # nothing drawn, nothing to look at again
    empty = np.full(frame.shape, 0.05, np.float32)
    _look(segmenter, empty, norm, maps)
    assert (empty == 0.05).all()


def test_training_on_zoomed_views_turns_the_look_on_and_a_tuned_set_keeps_it(tmp_path):
    us = make_ultrasound(5, label="malignant", shape=(160, 200))
    mg = make_mammogram(5, label="malignant", shape=(200, 160))
    us_examples = make_examples(us.image, "US", SIZE, "malignant", us.lesion, example_id="u")
    mg_examples = make_examples(mg.image, "MG", SIZE, "malignant", mg.lesion, example_id="m")
    config = TrainConfig(epochs=1, batch_size=4, augment=False, val_fraction=0.0)

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    taught = tmp_path / "us.safetensors"
    train(
        model,
        us_examples + mg_examples,
        config,
        taught,
        sha,
        val_examples=us_examples,
        extra_meta={"backbone_seed": "0"},
    )
    assert read_metadata(taught)["zoom_look"] == {"US": ZOOM_LOOK_CONTEXT}
    loaded, meta = load_model(taught)
    assert meta["zoom_look"] == {"US": ZOOM_LOOK_CONTEXT}

    # tuned further on mammograms alone: the ultrasound look is carried over
    tuned = tmp_path / "tuned.safetensors"
    extra = {"backbone_seed": "0", **carried_meta(meta, taught.name)}
    train(loaded, mg_examples, config, tuned, sha, val_examples=mg_examples, extra_meta=extra)
    assert load_model(tuned)[1]["zoom_look"] == {"US": ZOOM_LOOK_CONTEXT}

    # a set never taught zoomed views has no second look
    plain = tmp_path / "plain.safetensors"
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    train(model, mg_examples, config, plain, sha, val_examples=mg_examples, extra_meta={"backbone_seed": "0"})
    assert "zoom_look" not in read_metadata(plain) and load_model(plain)[1]["zoom_look"] == {}


def test_unreadable_zoom_look_metadata_is_refused(tmp_path):
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    path = save_prompt_set(tmp_path / "p.safetensors", model, sha, {"backbone_seed": "0"})
    for bad in ('{"US": "wide"}', '{"CT": 2.5}', '{"US": 0.5}', "[2.5]"):
        with_metadata(path, tmp_path / "bad.safetensors", {"zoom_look": bad})
        with pytest.raises(AvptError, match="zoom_look"):
            load_model(tmp_path / "bad.safetensors")
    with_metadata(path, tmp_path / "good.safetensors", {"zoom_look": json.dumps({"US": 3})})
    assert load_model(tmp_path / "good.safetensors")[1]["zoom_look"] == {"US": 3.0}


def _two_regions():
    """A segmenter that looks again, a frame, its model image and maps, and
    a probability with a strong region and a weaker one far from it, with
    the boxes of the views zoomed on each (strong, weak)."""
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=2)
    segmenter = Segmenter(model, "cpu", zoom_look={"US": 2.5})
    frame = make_ultrasound(4, label="malignant", shape=(200, 320)).image
    norm, maps = normalize(frame, "US"), tissue_maps(frame, "US")
    prob = np.full(frame.shape, 0.05, np.float32)
    strong, weak = _disc(frame.shape, (60, 60), 12), _disc(frame.shape, (140, 260), 8)
    prob[strong], prob[weak] = 0.9, 0.6
    near, far = (lesion_view(frame.shape, m, SIZE, 2.5).box for m in (strong, weak))
    return segmenter, norm, maps, prob, near, far


def test_more_than_one_region_can_be_looked_at_again(monkeypatch):
    from napari_avpt.engine import zoom_look

    segmenter, norm, maps, prob, near, far = _two_regions()
    once, twice = prob.copy(), prob.copy()
    _look(segmenter, once, norm, maps)
    monkeypatch.setattr(zoom_look, "ZOOM_REGIONS", 2)
    _look(segmenter, twice, norm, maps)
    r0, r1, c0, c1 = far  # the weaker region's view: looked at only when two regions are
    assert np.array_equal(once[r0:r1, c0:c1], prob[r0:r1, c0:c1])
    assert not np.array_equal(twice[r0:r1, c0:c1], prob[r0:r1, c0:c1])
    assert not set(range(near[0], near[1])) & set(range(r0, r1)) or not set(range(near[2], near[3])) & set(
        range(c0, c1)
    )
    assert np.allclose(once[near[0] : near[1], near[2] : near[3]], twice[near[0] : near[1], near[2] : near[3]])


def test_the_look_goes_to_the_region_ranked_first_by_a_given_rank():
    segmenter, norm, maps, prob, near, far = _two_regions()
    # A rank that prefers the region of less mass (as a set's lesion choice may).
    weaker_first = lambda regions, ids: np.array([-float((regions == i).sum()) for i in ids])  # noqa: E731
    looked = prob.copy()
    _look(segmenter, looked, norm, maps, rank=weaker_first)
    r0, r1, c0, c1 = far
    assert not np.array_equal(looked[r0:r1, c0:c1], prob[r0:r1, c0:c1])
    r0, r1, c0, c1 = near
    assert np.array_equal(looked[r0:r1, c0:c1], prob[r0:r1, c0:c1])
